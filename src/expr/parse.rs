//! The text form of an expression: a recursive-descent parser whose errors
//! name the column. No input makes it panic or recurse without bound: trees
//! deeper than [`MAX_DEPTH`] are an error.

use super::ir::{MAX_DEPTH, Ty};
use super::{Expr, Lit, Node, Op, Vars, invalid};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(Lit),
    Name(String),
    Sym(&'static str),
    End,
}

const SYMBOLS: [&str; 17] = [
    "||", "&&", "<=", ">=", "==", "!=", "<", ">", "+", "-", "*", "/", "%", "!", "(", ")", ",",
];

fn lex(text: &str) -> Result<Vec<(Tok, usize)>> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let mut float = false;
            if chars.get(i) == Some(&'.') {
                float = true;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            if matches!(chars.get(i), Some('e' | 'E')) {
                let mut j = i + 1;
                if matches!(chars.get(j), Some('+' | '-')) {
                    j += 1;
                }
                if chars.get(j).is_some_and(char::is_ascii_digit) {
                    float = true;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let s: String = chars[start..i].iter().collect();
            let lit = if float {
                Lit::Float(
                    s.parse()
                        .map_err(|_| syntax(col, &format!("bad number `{s}`")))?,
                )
            } else {
                Lit::Int(
                    s.parse()
                        .map_err(|_| syntax(col, &format!("integer `{s}` is too large")))?,
                )
            };
            out.push((Tok::Num(lit), col));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), col));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let sym = SYMBOLS
                .iter()
                .find(|s| rest.starts_with(**s))
                .ok_or_else(|| syntax(col, &format!("unexpected `{c}`")))?;
            i += sym.chars().count();
            out.push((Tok::Sym(sym), col));
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

fn syntax(col: usize, what: &str) -> crate::error::Error {
    invalid(format!("syntax error at column {col}: {what}"))
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    vars: &'a Vars,
    /// Open recursions (prefix operators, parentheses, calls).
    nest: usize,
}

/// A parsed subtree and its depth.
type Parsed = (Expr, usize);

pub(crate) fn parse(text: &str, vars: &Vars) -> Result<Expr> {
    let mut p = Parser {
        toks: lex(text)?,
        pos: 0,
        vars,
        nest: 0,
    };
    let (e, _) = p.or()?;
    match p.peek() {
        Tok::End => Ok(e),
        t => Err(syntax(p.col(), &format!("unexpected {}", describe(t)))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(Lit::Int(v)) => format!("number `{v}`"),
        Tok::Num(l) => format!("number `{l:?}`"),
        Tok::Name(n) => format!("name `{n}`"),
        Tok::Sym(s) => format!("`{s}`"),
        Tok::End => "end of text".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn col(&self) -> usize {
        self.toks[self.pos].1
    }

    fn eat(&mut self, sym: &str) -> bool {
        if *self.peek() == Tok::Sym(leak(sym)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<()> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(syntax(
                self.col(),
                &format!("expected `{sym}`, found {}", describe(self.peek())),
            ))
        }
    }

    fn node(&self, col: usize, op: Op, args: Vec<Parsed>) -> Result<Parsed> {
        let depth = 1 + args.iter().map(|a| a.1).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return Err(invalid(format!(
                "column {col}: expression nests deeper than {MAX_DEPTH} levels"
            )));
        }
        let args = args.into_iter().map(|a| a.0).collect();
        Ok((Expr::call(op, args).at(col), depth))
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, Op)],
        next: fn(&mut Self) -> Result<Parsed>,
    ) -> Result<Parsed> {
        let mut left = next(self)?;
        'outer: loop {
            for &(sym, op) in ops {
                let col = self.col();
                if self.eat(sym) {
                    let right = next(self)?;
                    left = self.node(col, op, vec![left, right])?;
                    continue 'outer;
                }
            }
            return Ok(left);
        }
    }

    fn or(&mut self) -> Result<Parsed> {
        self.binary_level(&[("||", Op::Or)], Self::and)
    }

    fn and(&mut self) -> Result<Parsed> {
        self.binary_level(&[("&&", Op::And)], Self::cmp)
    }

    fn cmp(&mut self) -> Result<Parsed> {
        self.binary_level(
            &[
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<", Op::Lt),
                (">", Op::Gt),
            ],
            Self::add,
        )
    }

    fn add(&mut self) -> Result<Parsed> {
        self.binary_level(&[("+", Op::Add), ("-", Op::Sub)], Self::mul)
    }

    fn mul(&mut self) -> Result<Parsed> {
        self.binary_level(
            &[("*", Op::Mul), ("/", Op::Div), ("%", Op::Rem)],
            Self::unary,
        )
    }

    fn unary(&mut self) -> Result<Parsed> {
        let col = self.col();
        for (sym, op) in [("-", Op::Neg), ("!", Op::Not)] {
            if self.eat(sym) {
                self.enter(col)?;
                let a = self.unary();
                self.nest -= 1;
                let a = a?;
                // `-2` is the literal -2, so `-2147483648` fits i32.
                if op == Op::Neg {
                    if let Node::Lit(Lit::Int(v)) = &*a.0.node {
                        return Ok((Expr::new_lit(Lit::Int(-v)).at(col), 1));
                    }
                    if let Node::Lit(Lit::Float(v)) = &*a.0.node {
                        return Ok((Expr::new_lit(Lit::Float(-v)).at(col), 1));
                    }
                }
                return self.node(col, op, vec![a]);
            }
        }
        self.primary()
    }

    /// One more level of recursion, refused past [`MAX_DEPTH`].
    fn enter(&mut self, col: usize) -> Result<()> {
        self.nest += 1;
        if self.nest > MAX_DEPTH {
            self.nest -= 1;
            return Err(invalid(format!(
                "column {col}: expression nests deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Parsed> {
        let col = self.col();
        let tok = self.peek().clone();
        self.pos += 1;
        match tok {
            Tok::Num(lit) => Ok((Expr::new_lit(lit).at(col), 1)),
            Tok::Sym("(") => {
                self.enter(col)?;
                let e = self.or();
                self.nest -= 1;
                let e = e?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Name(name) => {
                if *self.peek() == Tok::Sym("(") {
                    self.pos += 1;
                    self.enter(col)?;
                    let r = self.call(col, &name);
                    self.nest -= 1;
                    return r;
                }
                match self.vars.names.get(&name) {
                    Some(&(array, ty)) => {
                        let node = if array {
                            Node::Input(name.as_str().into(), ty)
                        } else {
                            Node::Scalar(name.as_str().into(), ty)
                        };
                        Ok((Expr::from_node(node).at(col), 1))
                    }
                    None => {
                        let known: Vec<&str> = self.vars.names.keys().map(String::as_str).collect();
                        Err(invalid(format!(
                            "column {col}: unknown name `{name}` (declared: {})",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        )))
                    }
                }
            }
            t => Err(syntax(
                col,
                &format!("expected a value, found {}", describe(&t)),
            )),
        }
    }

    fn call(&mut self, col: usize, name: &str) -> Result<Parsed> {
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.or()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let cast = match name {
            "f32" => Some(Ty::F32),
            "i32" => Some(Ty::I32),
            "u32" => Some(Ty::U32),
            "f64" => Some(Ty::F64),
            _ => None,
        };
        if let Some(t) = cast {
            if args.len() != 1 {
                return Err(invalid(format!(
                    "column {col}: `{name}` takes 1 argument, got {}",
                    args.len()
                )));
            }
            let (a, d) = args.pop().expect("one");
            return Ok((Expr::from_node(Node::Cast(t, a)).at(col), d + 1));
        }
        let op = Op::function(name)
            .ok_or_else(|| invalid(format!("column {col}: unknown function `{name}`")))?;
        if args.len() != op.arity() {
            return Err(invalid(format!(
                "column {col}: `{name}` takes {} argument(s), got {}",
                op.arity(),
                args.len()
            )));
        }
        self.node(col, op, args)
    }
}

/// The `&'static str` of a symbol in [`SYMBOLS`].
fn leak(sym: &str) -> &'static str {
    SYMBOLS.iter().find(|s| **s == sym).copied().unwrap_or("")
}

impl Expr {
    fn new_lit(lit: Lit) -> Expr {
        Expr::from_node(Node::Lit(lit))
    }

    fn from_node(node: Node) -> Expr {
        Expr {
            node: std::sync::Arc::new(node),
            column: None,
        }
    }
}
