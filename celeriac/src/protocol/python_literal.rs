//! Reading back the argument reprs Celery stores, where they are all there is.
//!
//! django-celery-results keeps a task's arguments only as `argsrepr`/`kwargsrepr` (the texts
//! the producer put in the message headers), so running a Python task again from the
//! dashboard means turning `(42, 'x')` back into `[42, "x"]`. Those texts come from Celery's
//! `saferepr`, which is not `repr`: it cuts long values short with `...` (inside a string's
//! quotes, too), and writes a string's backslashes and line breaks as they are while escaping
//! its single quotes. So only what reads back exactly is accepted: `None`, `True`, `False`,
//! integers that fit 64 bits, finite floats, strings, tuples, lists and dicts with string
//! keys. A string with a backslash other than `\'`, or ending in `...`, is refused rather than
//! guessed at, as is anything else (`datetime(…)`, sets, bytes, objects): a re-run with
//! arguments that differ from the original is worse than no re-run.

use serde_json::{Map, Number, Value};

/// Why a repr cannot be read back exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at character {position}")]
pub struct LiteralError {
    /// What was found.
    pub reason: &'static str,
    /// Where, counting characters from 0.
    pub position: usize,
}

/// Reads the repr of positional arguments (a tuple or list) back as their JSON values.
pub fn parse_args(text: &str) -> Result<Vec<Value>, LiteralError> {
    match parse(text)? {
        Value::Array(items) => Ok(items),
        _ => Err(LiteralError {
            reason: "positional arguments are not a tuple or list",
            position: 0,
        }),
    }
}

/// Reads the repr of keyword arguments (a dict) back as a JSON object.
pub fn parse_kwargs(text: &str) -> Result<Map<String, Value>, LiteralError> {
    match parse(text)? {
        Value::Object(map) => Ok(map),
        _ => Err(LiteralError {
            reason: "keyword arguments are not a dict",
            position: 0,
        }),
    }
}

/// Reads one Python literal (module docs for what is accepted).
pub fn parse(text: &str) -> Result<Value, LiteralError> {
    let mut parser = Parser {
        characters: text.chars().collect(),
        position: 0,
        depth: 0,
    };
    let value = parser.value()?;
    parser.skip_spaces();
    if parser.position != parser.characters.len() {
        return Err(parser.error("text after the value"));
    }
    Ok(value)
}

/// Deeper nesting than this is refused, so a hostile repr cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

struct Parser {
    characters: Vec<char>,
    position: usize,
    depth: usize,
}

impl Parser {
    fn error(&self, reason: &'static str) -> LiteralError {
        LiteralError {
            reason,
            position: self.position,
        }
    }

    fn peek(&self) -> Option<char> {
        self.characters.get(self.position).copied()
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(|character| character == ' ') {
            self.position += 1;
        }
    }

    fn expect(&mut self, wanted: char, reason: &'static str) -> Result<(), LiteralError> {
        self.skip_spaces();
        if self.peek() == Some(wanted) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn value(&mut self) -> Result<Value, LiteralError> {
        self.skip_spaces();
        match self.peek() {
            None => Err(self.error("end of text where a value was expected")),
            Some('\'' | '"') => self.string().map(Value::String),
            Some('(') => self.sequence(')'),
            Some('[') => self.sequence(']'),
            Some('{') => self.dict(),
            Some(character) if character == '-' || character.is_ascii_digit() => self.number(),
            Some(character) if character.is_ascii_alphabetic() || character == '_' => {
                self.keyword()
            }
            Some(_) => Err(self.error("not a Python literal")),
        }
    }

    fn nested<T>(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<T, LiteralError>,
    ) -> Result<T, LiteralError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        self.depth += 1;
        let result = body(self);
        self.depth -= 1;
        result
    }

    /// A tuple or a list: items separated by commas, a trailing comma allowed.
    fn sequence(&mut self, close: char) -> Result<Value, LiteralError> {
        self.position += 1;
        self.nested(|parser| {
            let mut items = Vec::new();
            loop {
                parser.skip_spaces();
                if parser.peek() == Some(close) {
                    parser.position += 1;
                    return Ok(Value::Array(items));
                }
                items.push(parser.value()?);
                parser.skip_spaces();
                match parser.peek() {
                    Some(',') => parser.position += 1,
                    Some(character) if character == close => {}
                    _ => return Err(parser.error("expected ',' or the closing bracket")),
                }
            }
        })
    }

    fn dict(&mut self) -> Result<Value, LiteralError> {
        self.position += 1;
        self.nested(|parser| {
            let mut map = Map::new();
            loop {
                parser.skip_spaces();
                if parser.peek() == Some('}') {
                    parser.position += 1;
                    return Ok(Value::Object(map));
                }
                let key = match parser.value()? {
                    Value::String(key) => key,
                    _ => return Err(parser.error("a dict key that is not a string")),
                };
                parser.expect(':', "expected ':' after a dict key")?;
                let value = parser.value()?;
                map.insert(key, value);
                parser.skip_spaces();
                match parser.peek() {
                    Some(',') => parser.position += 1,
                    Some('}') => {}
                    _ => return Err(parser.error("expected ',' or '}'")),
                }
            }
        })
    }

    fn string(&mut self) -> Result<String, LiteralError> {
        let Some(quote) = self.peek() else {
            return Err(self.error("end of text where a string was expected"));
        };
        self.position += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("a string that does not end")),
                Some('\\') => {
                    // Only `\'` reads back the same from `repr` and `saferepr` alike.
                    if self.characters.get(self.position + 1) == Some(&'\'') {
                        text.push('\'');
                        self.position += 2;
                    } else {
                        return Err(self.error(
                            "a backslash in a string (Celery's saferepr does not escape them)",
                        ));
                    }
                }
                Some(character) if character == quote => {
                    self.position += 1;
                    break;
                }
                Some(character) => {
                    text.push(character);
                    self.position += 1;
                }
            }
        }
        if text.ends_with("...") {
            return Err(self.error("a string ending in '...' (saferepr may have cut it short)"));
        }
        Ok(text)
    }

    fn number(&mut self) -> Result<Value, LiteralError> {
        let start = self.position;
        while self.peek().is_some_and(|character| {
            character.is_ascii_digit() || matches!(character, '-' | '+' | '.' | 'e' | 'E')
        }) {
            self.position += 1;
        }
        let text: String = self.characters[start..self.position].iter().collect();
        let is_integer = text
            .trim_start_matches('-')
            .chars()
            .all(|character| character.is_ascii_digit());
        if is_integer {
            if let Ok(number) = text.parse::<i64>() {
                return Ok(Value::Number(number.into()));
            }
            if let Ok(number) = text.parse::<u64>() {
                return Ok(Value::Number(number.into()));
            }
            return Err(LiteralError {
                reason: "an integer too large for 64 bits",
                position: start,
            });
        }
        text.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or(LiteralError {
                reason: "not a number",
                position: start,
            })
    }

    fn keyword(&mut self) -> Result<Value, LiteralError> {
        let start = self.position;
        while self
            .peek()
            .is_some_and(|character| character.is_ascii_alphanumeric() || character == '_')
        {
            self.position += 1;
        }
        let word: String = self.characters[start..self.position].iter().collect();
        match word.as_str() {
            "None" => Ok(Value::Null),
            "True" => Ok(Value::Bool(true)),
            "False" => Ok(Value::Bool(false)),
            _ => Err(LiteralError {
                reason: "a name that is not None, True or False (an object, not a literal)",
                position: start,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{python_args_repr, python_repr};
    use serde_json::json;

    #[test]
    fn reads_back_what_celery_writes() {
        assert_eq!(parse_args("(42,)").unwrap(), vec![json!(42)]);
        assert_eq!(parse_args("()").unwrap(), Vec::<Value>::new());
        assert_eq!(
            parse_args("(1, -2.5, 'a b', None, True, False, [1, (2, 3)], {'k': 'v'})").unwrap(),
            vec![
                json!(1),
                json!(-2.5),
                json!("a b"),
                Value::Null,
                json!(true),
                json!(false),
                json!([1, [2, 3]]),
                json!({"k": "v"})
            ]
        );
        assert_eq!(
            parse_kwargs("{'order_id': 7, 'note': \"it's\"}").unwrap(),
            json!({"order_id": 7, "note": "it's"})
                .as_object()
                .unwrap()
                .clone()
        );
        // saferepr's way with a quote.
        assert_eq!(parse("'it\\'s'").unwrap(), json!("it's"));
        assert_eq!(parse("1e+20").unwrap(), json!(1e20));
        assert_eq!(parse("18446744073709551615").unwrap(), json!(u64::MAX));
    }

    #[test]
    fn our_own_reprs_read_back() {
        let args = vec![
            json!(1),
            json!("x"),
            json!({"a": [1, 2.25, null]}),
            json!("O'Brien"),
        ];
        assert_eq!(parse_args(&python_args_repr(&args)).unwrap(), args);
        let kwargs = json!({"to": "a@example.com", "retry": false});
        assert_eq!(parse(&python_repr(&kwargs)).unwrap(), kwargs);
    }

    #[test]
    fn refuses_what_would_not_read_back_exactly() {
        for text in [
            "('aaaa...',)",                     // a string saferepr cut short
            "(1, 2, ...)",                      // a tuple saferepr cut short
            "('C:\\new',)",                     // a raw backslash
            "(datetime.datetime(2026, 1, 1),)", // an object
            "({1, 2},)",                        // a set
            "(b'x',)",                          // bytes
            "({1: 2},)",                        // a key JSON cannot hold
            "(inf,)",
            "(123456789012345678901234567890,)",
            "('unterminated,)",
            "(1, 2) trailing",
        ] {
            assert!(parse(text).is_err(), "{text} was accepted");
        }
        assert!(parse_args("{'a': 1}").is_err());
        assert!(parse_kwargs("(1,)").is_err());
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse(&deep).unwrap_err().reason, "nested too deeply");
    }
}
