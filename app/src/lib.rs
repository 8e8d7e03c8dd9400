//! Leptos components and the types shared by server and browser.
