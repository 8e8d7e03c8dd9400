//! `celeriac user add|passwd|list|delete`: the dashboard's accounts. There is no default account, so
//! the first admin is made here, on the machine that holds the database.

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::Context as _;
use celeriac::auth::users::UserStore;
use celeriac::auth::Role;
use celeriac::config::Config;
use clap::{Args, Subcommand};

use crate::dashboard::auth::password;

/// Shortest password accepted.
const MIN_PASSWORD_CHARS: usize = 8;

/// `celeriac user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UserCommand,
}

/// The account commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account; the password is asked on the terminal.
    Add {
        /// Login name.
        name: String,
        /// viewer (read-only), operator (acts on tasks) or admin (schedules, users, shutdown).
        #[arg(long)]
        role: Role,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password; the account's sessions made with the old one end.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List,
    /// Delete an account; its sessions end at their next request.
    Delete {
        /// Login name.
        name: String,
    },
}

/// Runs a `celeriac user` command against `database_url`.
pub async fn user(config: Config, args: UserArgs) -> anyhow::Result<()> {
    let users = UserStore::new(crate::open_database(&config).await?);
    match args.command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let hash = new_password_hash(password_stdin).await?;
            users.add(&name, role, &hash).await?;
            println!("user {name} added with role {role}");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let hash = new_password_hash(password_stdin).await?;
            users.set_password(&name, &hash).await?;
            println!("password of {name} changed; its other sessions have ended");
        }
        UserCommand::List => {
            for user in users.list().await? {
                println!(
                    "{}\t{}\t{}",
                    user.name,
                    user.role,
                    user.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
            }
        }
        UserCommand::Delete { name } => {
            users.delete(&name).await?;
            println!("user {name} deleted");
        }
    }
    Ok(())
}

/// A new password, from standard input or asked twice on the terminal, checked and hashed.
async fn new_password_hash(password_stdin: bool) -> anyhow::Result<String> {
    let password = if password_stdin {
        read_stdin_password()?
    } else {
        prompt_password()?
    };
    if password.chars().count() < MIN_PASSWORD_CHARS {
        anyhow::bail!("the password must have at least {MIN_PASSWORD_CHARS} characters");
    }
    password::Hasher::new()?.hash(password).await
}

fn read_stdin_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn prompt_password() -> anyhow::Result<String> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to ask the password on; pass --password-stdin");
    }
    let password = rpassword::prompt_password("Password: ").context("reading the password")?;
    let repeated =
        rpassword::prompt_password("Password (again): ").context("reading the password")?;
    if password != repeated {
        anyhow::bail!("the passwords differ");
    }
    Ok(password)
}
