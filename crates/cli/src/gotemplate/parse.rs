//! Tokens to a tree: text, actions, pipelines of commands, and the control structures
//! `if`/`else if`/`else`, `with`/`else with`, `range`/`else`, `break`, `continue`, `end`.
//! Variables are checked here, as Go does: using one that is not in scope is a parse error.

use std::fmt;

use serde_json::Value;

use super::lex::{Keyword, Tok, Token};
use super::{exec, SyntaxError};

#[derive(Debug)]
pub(super) enum Node {
    Text(String),
    /// `{{pipeline}}`: prints the value unless the pipeline declares or assigns variables.
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Break,
    Continue,
}

/// The pipeline, the list run when it holds, and what runs otherwise. `{{else if …}}` is an
/// else list holding one `If`.
#[derive(Debug)]
pub(super) struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub(super) struct Pipe {
    pub pos: usize,
    /// Variables declared (`$x :=`) or assigned (`$x =`) by this pipeline.
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub(super) struct Command {
    pub args: Vec<Operand>,
}

#[derive(Debug)]
pub(super) enum Operand {
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    /// Source text and value.
    Number(usize, String, Value),
    /// Source text (with its quotes) and value.
    Str(usize, String, String),
    /// `.A.B`: the names.
    Field(usize, Vec<String>),
    /// `$x.A.B`: the variable and the names after it.
    Variable(usize, String, Vec<String>),
    Func(usize, String),
    /// A parenthesized pipeline.
    Pipe(Box<Pipe>),
    /// `(pipeline).A.B`.
    Chain(usize, Box<Operand>, Vec<String>),
}

impl Operand {
    pub(super) fn pos(&self) -> usize {
        match self {
            Operand::Dot(p)
            | Operand::Nil(p)
            | Operand::Bool(p, _)
            | Operand::Number(p, ..)
            | Operand::Str(p, ..)
            | Operand::Field(p, _)
            | Operand::Variable(p, ..)
            | Operand::Func(p, _)
            | Operand::Chain(p, ..) => *p,
            Operand::Pipe(pipe) => pipe.pos,
        }
    }
}

/// Operands print back as template source; execution errors quote them (`at <.A.B>`).
impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Dot(_) => f.write_str("."),
            Operand::Nil(_) => f.write_str("nil"),
            Operand::Bool(_, b) => write!(f, "{b}"),
            Operand::Number(_, text, _) | Operand::Str(_, text, _) => f.write_str(text),
            Operand::Field(_, names) => names.iter().try_for_each(|n| write!(f, ".{n}")),
            Operand::Variable(_, var, names) => {
                f.write_str(var)?;
                names.iter().try_for_each(|n| write!(f, ".{n}"))
            }
            Operand::Func(_, name) => f.write_str(name),
            Operand::Pipe(pipe) => write!(f, "({pipe})"),
            Operand::Chain(_, node, names) => {
                write!(f, "{node}")?;
                names.iter().try_for_each(|n| write!(f, ".{n}"))
            }
        }
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            let op = if self.is_assign { "=" } else { ":=" };
            write!(f, "{} {op} ", self.decl.join(", "))?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

/// What ends a list of nodes.
enum Item {
    Node(Node),
    End,
    /// `{{else}}`; `chained` when an `if` or `with` follows (`{{else if …}}`), not yet consumed.
    Else {
        pos: usize,
        chained: bool,
    },
}

/// Deep enough for any real template, shallow enough not to exhaust the stack.
const MAX_DEPTH: usize = 500;

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Variables in scope, innermost last; `$` is always there.
    vars: Vec<String>,
    range_depth: usize,
    depth: usize,
}

pub(super) fn parse(tokens: Vec<Token>) -> Result<Vec<Node>, SyntaxError> {
    let mut parser = Parser {
        tokens,
        next: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
    };
    let mut list = Vec::new();
    while parser.peek_non_space().tok != Tok::Eof {
        match parser.text_or_action()? {
            Item::Node(n) => list.push(n),
            Item::End => return Err(parser.error_here("unexpected {{end}}")),
            Item::Else { pos, .. } => return Err(error(pos, "unexpected {{else}}")),
        }
    }
    Ok(list)
}

fn error(pos: usize, message: impl Into<String>) -> SyntaxError {
    SyntaxError {
        pos,
        message: message.into(),
    }
}

fn unexpected(token: &Token, context: &str) -> SyntaxError {
    error(
        token.pos,
        format!("unexpected {} in {context}", token.tok.describe()),
    )
}

impl Parser {
    fn next(&mut self) -> Token {
        let token = self.tokens[self.next].clone();
        if self.next + 1 < self.tokens.len() {
            self.next += 1;
        }
        token
    }

    fn peek(&self) -> &Token {
        &self.tokens[self.next]
    }

    fn skip_spaces(&mut self) {
        while self.peek().tok == Tok::Space {
            self.next += 1;
        }
    }

    fn next_non_space(&mut self) -> Token {
        self.skip_spaces();
        self.next()
    }

    fn peek_non_space(&mut self) -> &Token {
        self.skip_spaces();
        self.peek()
    }

    /// An error at the token just consumed.
    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        error(self.tokens[self.next.saturating_sub(1)].pos, message)
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), SyntaxError> {
        let token = self.next_non_space();
        if token.tok == Tok::RightDelim {
            Ok(())
        } else {
            Err(unexpected(&token, context))
        }
    }

    fn text_or_action(&mut self) -> Result<Item, SyntaxError> {
        let token = self.next_non_space();
        match token.tok {
            Tok::Text(text) => Ok(Item::Node(Node::Text(text))),
            Tok::LeftDelim => self.action(),
            _ => Err(unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> Result<Item, SyntaxError> {
        let start = self.next;
        let token = self.next_non_space();
        let Tok::Keyword(keyword) = token.tok else {
            self.next = start;
            return Ok(Item::Node(Node::Action(
                self.pipeline("command", &Tok::RightDelim)?,
            )));
        };
        let node = match keyword {
            Keyword::Else => {
                let peek = self.peek_non_space();
                if matches!(peek.tok, Tok::Keyword(Keyword::If | Keyword::With)) {
                    return Ok(Item::Else {
                        pos: token.pos,
                        chained: true,
                    });
                }
                self.expect_right_delim("else")?;
                return Ok(Item::Else {
                    pos: token.pos,
                    chained: false,
                });
            }
            Keyword::End => {
                self.expect_right_delim("end")?;
                return Ok(Item::End);
            }
            Keyword::If => Node::If(self.control("if")?),
            Keyword::With => Node::With(self.control("with")?),
            Keyword::Range => Node::Range(self.control("range")?),
            Keyword::Break | Keyword::Continue => {
                let word = keyword.word();
                if self.range_depth == 0 {
                    return Err(error(
                        token.pos,
                        format!("{{{{{word}}}}} outside {{{{range}}}}"),
                    ));
                }
                self.expect_right_delim(&format!("{{{{{word}}}}}"))?;
                if keyword == Keyword::Break {
                    Node::Break
                } else {
                    Node::Continue
                }
            }
            Keyword::Template | Keyword::Define | Keyword::Block => {
                return Err(error(
                    token.pos,
                    format!(
                        "{{{{{}}}}} is not supported: a --format template is a single template",
                        keyword.word()
                    ),
                ))
            }
        };
        Ok(Item::Node(node))
    }

    /// `if`, `with` and `range`: pipeline, list, optional else, `{{end}}`. Variables declared
    /// in the pipeline or the lists go out of scope at the end.
    fn control(&mut self, context: &str) -> Result<Branch, SyntaxError> {
        let scope = self.vars.len();
        let pipe = self.pipeline(context, &Tok::RightDelim)?;
        let is_range = context == "range";
        self.range_depth += usize::from(is_range);
        let (list, next) = self.item_list()?;
        self.range_depth -= usize::from(is_range);
        let else_list = match next {
            Item::End => None,
            Item::Else { chained, pos } => {
                let follows = self.peek_non_space().tok.clone();
                match (context, follows) {
                    ("if", Tok::Keyword(Keyword::If)) if chained => {
                        self.next_non_space();
                        Some(vec![Node::If(self.control("if")?)])
                    }
                    ("with", Tok::Keyword(Keyword::With)) if chained => {
                        self.next_non_space();
                        Some(vec![Node::With(self.control("with")?)])
                    }
                    _ => {
                        let (list, next) = self.item_list()?;
                        match next {
                            Item::End => Some(list),
                            Item::Else { .. } => {
                                return Err(error(pos, "expected end; found {{else}}"))
                            }
                            Item::Node(_) => unreachable!("item_list stops only at end or else"),
                        }
                    }
                }
            }
            Item::Node(_) => unreachable!("item_list stops only at end or else"),
        };
        self.vars.truncate(scope);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn item_list(&mut self) -> Result<(Vec<Node>, Item), SyntaxError> {
        let mut list = Vec::new();
        while self.peek_non_space().tok != Tok::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        Err(error(self.peek().pos, "unexpected EOF"))
    }

    fn pipeline(&mut self, context: &str, end: &Tok) -> Result<Pipe, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here("template nested too deeply"));
        }
        let pos = self.peek_non_space().pos;
        let mut decl = Vec::new();
        let mut is_assign = false;
        loop {
            let start = self.next;
            let Tok::Variable(name) = self.peek_non_space().tok.clone() else {
                break;
            };
            self.next_non_space();
            let token = self.next_non_space();
            match token.tok {
                Tok::Declare | Tok::Assign => {
                    is_assign = token.tok == Tok::Assign;
                    if is_assign && !self.vars.contains(&name) {
                        return Err(error(token.pos, format!("undefined variable {name:?}")));
                    }
                    decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Comma => {
                    decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && decl.len() < 2 {
                        match self.peek_non_space().tok {
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return Err(self.error_here("range can only initialize variables")),
                        }
                    }
                    return Err(self.error_here(format!("too many declarations in {context}")));
                }
                _ => {
                    self.next = start;
                    break;
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            let start = self.next;
            let token = self.next_non_space();
            match &token.tok {
                tok if tok == end => break,
                Tok::Bool(_)
                | Tok::Char(..)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(..)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.next = start;
                    cmds.push(self.command()?);
                }
                _ => return Err(unexpected(&token, context)),
            }
        }
        if cmds.is_empty() {
            return Err(self.error_here(format!("missing value for {context}")));
        }
        for (i, cmd) in cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args[0],
                Operand::Bool(..)
                    | Operand::Dot(_)
                    | Operand::Nil(_)
                    | Operand::Number(..)
                    | Operand::Str(..)
            ) {
                return Err(error(
                    cmd.args[0].pos(),
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        self.depth -= 1;
        Ok(Pipe {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Command, SyntaxError> {
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.next -= 1,
                Tok::Pipe => {}
                _ => return Err(unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            return Err(self.error_here("empty command"));
        }
        Ok(Command { args })
    }

    /// A term and any `.Field`s directly after it.
    fn operand(&mut self) -> Result<Option<Operand>, SyntaxError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut names = Vec::new();
        while let Tok::Field(name) = &self.peek().tok {
            names.push(name.clone());
            self.next();
        }
        if names.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Operand::Field(pos, mut chain) => {
                chain.extend(names);
                Operand::Field(pos, chain)
            }
            Operand::Variable(pos, var, mut chain) => {
                chain.extend(names);
                Operand::Variable(pos, var, chain)
            }
            Operand::Pipe(pipe) => Operand::Chain(pipe.pos, Box::new(Operand::Pipe(pipe)), names),
            other => {
                return Err(error(
                    other.pos(),
                    format!("unexpected . after term {:?}", other.to_string()),
                ))
            }
        }))
    }

    fn term(&mut self) -> Result<Option<Operand>, SyntaxError> {
        let start = self.next;
        let token = self.next_non_space();
        let pos = token.pos;
        Ok(Some(match token.tok {
            Tok::Ident(name) => {
                if !exec::is_function(&name) {
                    return Err(error(pos, format!("function {name:?} not defined")));
                }
                Operand::Func(pos, name)
            }
            Tok::Dot => Operand::Dot(pos),
            Tok::Nil => Operand::Nil(pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return Err(error(pos, format!("undefined variable {name:?}")));
                }
                Operand::Variable(pos, name, Vec::new())
            }
            Tok::Field(name) => Operand::Field(pos, vec![name]),
            Tok::Bool(b) => Operand::Bool(pos, b),
            Tok::Char(raw, code) => Operand::Number(pos, raw, Value::from(code)),
            Tok::Number(text) => {
                let value = number(&text).map_err(|m| error(pos, m))?;
                Operand::Number(pos, text, value)
            }
            Tok::LeftParen => Operand::Pipe(Box::new(
                self.pipeline("parenthesized pipeline", &Tok::RightParen)?,
            )),
            Tok::Str(raw, value) => Operand::Str(pos, raw, value),
            _ => {
                self.next = start;
                return Ok(None);
            }
        }))
    }
}

/// A number constant: an integer when it reads as one (any base), otherwise a float.
fn number(text: &str) -> Result<Value, String> {
    if text.ends_with('i') {
        return Err(format!("complex number {text} is not supported"));
    }
    let clean = text.replace('_', "");
    let (negative, digits) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(b) = lower.strip_prefix("0x") {
        (16, b)
    } else if let Some(b) = lower.strip_prefix("0o") {
        (8, b)
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b)
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if let Ok(magnitude) = u64::from_str_radix(body, radix) {
        return if negative {
            i64::try_from(magnitude)
                .map(|m| Value::from(-m))
                .map_err(|_| format!("integer overflow: {text:?}"))
        } else {
            Ok(Value::from(magnitude))
        };
    }
    if radix == 10 && lower.contains(['.', 'e']) {
        if let Some(v) = clean
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Ok(Value::Number(v));
        }
    }
    if radix != 10 || lower.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("integer overflow or bad digits: {text:?}"));
    }
    Err(format!("illegal number syntax: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_go_constants() {
        assert_eq!(number("42").unwrap(), Value::from(42));
        assert_eq!(number("-7").unwrap(), Value::from(-7));
        assert_eq!(number("0x1f").unwrap(), Value::from(31));
        assert_eq!(number("0o17").unwrap(), Value::from(15));
        assert_eq!(number("017").unwrap(), Value::from(15));
        assert_eq!(number("0b101").unwrap(), Value::from(5));
        assert_eq!(number("1_000").unwrap(), Value::from(1000));
        assert_eq!(number("1.5").unwrap(), Value::from(1.5));
        assert_eq!(number(".5").unwrap(), Value::from(0.5));
        assert_eq!(number("1e3").unwrap(), Value::from(1000.0));
        assert!(number("1i").unwrap_err().contains("complex"));
        assert!(number("99999999999999999999")
            .unwrap_err()
            .contains("overflow"));
    }
}
