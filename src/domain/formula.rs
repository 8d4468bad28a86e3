//! A small, safe expression language over exact decimals for value-equation rules.
//!
//! Numbers, `+ - * /`, unary minus, parentheses, comparisons (`< <= > >= == !=`, giving 1 or
//! 0), `min(a, b, …)`, `max(a, b, …)`, `if(cond, then, else)` and named variables. Parsed once
//! when an equation is submitted; evaluated with checked `Decimal` arithmetic, so overflow
//! and division by zero are errors, never panics. Size is bounded (length, nodes, depth), so
//! evaluation is bounded too. No floats, no `eval`.

use std::collections::HashMap;
use std::fmt;

use rust_decimal::Decimal;

/// Longest formula, in characters.
pub const MAX_LEN: usize = 1000;
/// Most AST nodes.
pub const MAX_NODES: usize = 500;
/// Deepest nesting.
pub const MAX_DEPTH: usize = 48;

/// The variables a formula may name, and what they mean.
pub const VARIABLES: &[(&str, &str)] = &[
    ("quantity", "the contribution's quantity"),
    (
        "rate",
        "the rate found for it (agent+skill+kind, skill+kind, kind, default)",
    ),
    ("multiplier", "the multiplier of its kind"),
    ("value", "quantity × rate × multiplier"),
    (
        "decay",
        "the decay factor from its date to the cut-off (1 without a half-life)",
    ),
    ("hours", "the quantity when the unit is hours, else 0"),
    (
        "age_days",
        "whole days from when it occurred to the cut-off",
    ),
];

/// A parse or evaluation error at a character position (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormulaError {
    /// Character offset in the formula.
    pub position: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FormulaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at position {}: {}", self.position, self.message)
    }
}

fn err<T>(position: usize, message: impl Into<String>) -> Result<T, FormulaError> {
    Err(FormulaError {
        position,
        message: message.into(),
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Decimal),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

fn tokenize(src: &str) -> Result<Vec<(usize, Tok)>, FormulaError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            let n = Decimal::from_str_exact(&text)
                .or_else(|_| err(start, format!("'{text}' is not a number")))?;
            out.push((start, Tok::Num(n)));
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
            continue;
        }
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        let op = ["<=", ">=", "==", "!="].into_iter().find(|o| *o == two);
        if let Some(o) = op {
            out.push((start, Tok::Op(o)));
            i += 2;
            continue;
        }
        let tok = match c {
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' | '×' => Tok::Op("*"),
            '/' | '÷' => Tok::Op("/"),
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            other => return err(start, format!("unexpected character '{other}'")),
        };
        out.push((start, tok));
        i += 1;
    }
    Ok(out)
}

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Num(Decimal),
    /// A variable, with its position.
    Var(String, usize),
    /// Unary minus.
    Neg(Box<Expr>),
    /// A binary operation, with the operator's position.
    Bin(&'static str, Box<Expr>, Box<Expr>, usize),
    /// `min`, `max` or `if`, with its position.
    Call(String, Vec<Expr>, usize),
}

impl Expr {
    /// Whether the formula reads the variable `name` anywhere.
    pub fn mentions(&self, name: &str) -> bool {
        match self {
            Self::Num(_) => false,
            Self::Var(v, _) => v == name,
            Self::Neg(e) => e.mentions(name),
            Self::Bin(_, a, b, _) => a.mentions(name) || b.mentions(name),
            Self::Call(_, args, _) => args.iter().any(|a| a.mentions(name)),
        }
    }
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    nodes: usize,
    allowed: Vec<String>,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(p, _)| *p)
    }

    fn node(&mut self, depth: usize) -> Result<(), FormulaError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return err(
                self.at(),
                format!("formula is too large (more than {MAX_NODES} parts)"),
            );
        }
        if depth > MAX_DEPTH {
            return err(
                self.at(),
                format!("formula nests too deeply (more than {MAX_DEPTH} levels)"),
            );
        }
        Ok(())
    }

    // comparison := additive (cmp additive)?
    fn comparison(&mut self, depth: usize) -> Result<Expr, FormulaError> {
        let left = self.additive(depth)?;
        if let Some(Tok::Op(op @ ("<" | "<=" | ">" | ">=" | "==" | "!="))) = self.peek().cloned() {
            let p = self.at();
            self.pos += 1;
            self.node(depth)?;
            let right = self.additive(depth + 1)?;
            return Ok(Expr::Bin(op, Box::new(left), Box::new(right), p));
        }
        Ok(left)
    }

    fn additive(&mut self, depth: usize) -> Result<Expr, FormulaError> {
        let mut left = self.term(depth)?;
        while let Some(Tok::Op(op @ ("+" | "-"))) = self.peek().cloned() {
            let p = self.at();
            self.pos += 1;
            self.node(depth)?;
            let right = self.term(depth + 1)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right), p);
        }
        Ok(left)
    }

    fn term(&mut self, depth: usize) -> Result<Expr, FormulaError> {
        let mut left = self.unary(depth)?;
        while let Some(Tok::Op(op @ ("*" | "/"))) = self.peek().cloned() {
            let p = self.at();
            self.pos += 1;
            self.node(depth)?;
            let right = self.unary(depth + 1)?;
            left = Expr::Bin(op, Box::new(left), Box::new(right), p);
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, FormulaError> {
        self.node(depth)?;
        if let Some(Tok::Op("-")) = self.peek() {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, FormulaError> {
        let p = self.at();
        match self.peek().cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Num(n))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.comparison(depth + 1)?;
                self.expect_rparen(p)?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                self.pos += 1;
                if let Some(Tok::LParen) = self.peek() {
                    self.pos += 1;
                    let mut args = Vec::new();
                    if !matches!(self.peek(), Some(Tok::RParen)) {
                        loop {
                            args.push(self.comparison(depth + 1)?);
                            if let Some(Tok::Comma) = self.peek() {
                                self.pos += 1;
                            } else {
                                break;
                            }
                        }
                    }
                    self.expect_rparen(p)?;
                    return match (name.as_str(), args.len()) {
                        ("if", 3) => Ok(Expr::Call(name, args, p)),
                        ("if", n) => err(
                            p,
                            format!("if takes 3 arguments (condition, then, else), not {n}"),
                        ),
                        ("min" | "max", n) if n >= 1 => Ok(Expr::Call(name, args, p)),
                        ("min" | "max", _) => err(p, format!("{name} needs at least one argument")),
                        _ => err(
                            p,
                            format!("unknown function '{name}' (known: min, max, if)"),
                        ),
                    };
                }
                if !self.allowed.contains(&name) {
                    return err(
                        p,
                        format!(
                            "unknown variable '{name}' (known: {})",
                            self.allowed.join(", ")
                        ),
                    );
                }
                Ok(Expr::Var(name, p))
            }
            Some(other) => err(p, format!("unexpected {}", describe(&other))),
            None => err(p, "unexpected end of formula"),
        }
    }

    fn expect_rparen(&mut self, open: usize) -> Result<(), FormulaError> {
        match self.peek() {
            Some(Tok::RParen) => {
                self.pos += 1;
                Ok(())
            }
            _ => err(
                self.at(),
                format!("missing ')' for the '(' at position {open}"),
            ),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(n) => format!("number {n}"),
        Tok::Ident(i) => format!("name '{i}'"),
        Tok::Op(o) => format!("'{o}'"),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
    }
}

/// Parses `src`, allowing only the variables in `allowed`.
pub fn parse(src: &str, allowed: &[&str]) -> Result<Expr, FormulaError> {
    let len = src.chars().count();
    if len == 0 || src.trim().is_empty() {
        return err(0, "formula is empty");
    }
    if len > MAX_LEN {
        return err(
            MAX_LEN,
            format!("formula is longer than {MAX_LEN} characters"),
        );
    }
    let toks = tokenize(src)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: len,
        nodes: 0,
        allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
    };
    let e = p.comparison(0)?;
    if p.pos < p.toks.len() {
        let (at, t) = &p.toks[p.pos];
        return err(
            *at,
            format!("unexpected {} after the end of the expression", describe(t)),
        );
    }
    check_constants(&e)?;
    Ok(e)
}

/// Parses with the standard variable set.
pub fn parse_standard(src: &str) -> Result<Expr, FormulaError> {
    let names: Vec<&str> = VARIABLES.iter().map(|(n, _)| *n).collect();
    parse(src, &names)
}

/// Folds constant parts: division by zero or overflow that happens whatever the variables
/// are is a parse error, with its position. Returns the value when `e` is constant.
fn check_constants(e: &Expr) -> Result<Option<Decimal>, FormulaError> {
    let empty = HashMap::new();
    match e {
        Expr::Num(n) => Ok(Some(*n)),
        Expr::Var(..) => Ok(None),
        Expr::Neg(x) => Ok(check_constants(x)?.map(|v| -v)),
        Expr::Bin(op, l, r, p) => {
            let (a, b) = (check_constants(l)?, check_constants(r)?);
            if *op == "/" && b == Some(Decimal::ZERO) {
                return err(*p, "division by zero");
            }
            match (a, b) {
                (Some(_), Some(_)) => eval(e, &empty).map(Some),
                _ => Ok(None),
            }
        }
        Expr::Call(_, args, _) => {
            let mut all = true;
            for a in args {
                all &= check_constants(a)?.is_some();
            }
            if all {
                eval(e, &empty).map(Some)
            } else {
                Ok(None)
            }
        }
    }
}

fn truth(b: bool) -> Decimal {
    if b {
        Decimal::ONE
    } else {
        Decimal::ZERO
    }
}

/// Evaluates `e` with `vars`. Checked arithmetic: overflow and division by zero are errors.
pub fn eval(e: &Expr, vars: &HashMap<&str, Decimal>) -> Result<Decimal, FormulaError> {
    match e {
        Expr::Num(n) => Ok(*n),
        Expr::Var(name, p) => vars
            .get(name.as_str())
            .copied()
            .ok_or_else(|| FormulaError {
                position: *p,
                message: format!("variable '{name}' has no value here"),
            }),
        Expr::Neg(x) => Ok(-eval(x, vars)?),
        Expr::Bin(op, l, r, p) => {
            let (a, b) = (eval(l, vars)?, eval(r, vars)?);
            let overflow = || FormulaError {
                position: *p,
                message: format!("'{op}' overflows"),
            };
            match *op {
                "+" => a.checked_add(b).ok_or_else(overflow),
                "-" => a.checked_sub(b).ok_or_else(overflow),
                "*" => a.checked_mul(b).ok_or_else(overflow),
                "/" if b.is_zero() => err(*p, "division by zero"),
                "/" => a.checked_div(b).ok_or_else(overflow),
                "<" => Ok(truth(a < b)),
                "<=" => Ok(truth(a <= b)),
                ">" => Ok(truth(a > b)),
                ">=" => Ok(truth(a >= b)),
                "==" => Ok(truth(a == b)),
                "!=" => Ok(truth(a != b)),
                other => err(*p, format!("unknown operator '{other}'")),
            }
        }
        Expr::Call(name, args, p) => match name.as_str() {
            "if" => {
                if eval(&args[0], vars)?.is_zero() {
                    eval(&args[2], vars)
                } else {
                    eval(&args[1], vars)
                }
            }
            "min" | "max" => {
                let mut best: Option<Decimal> = None;
                for a in args {
                    let v = eval(a, vars)?;
                    best = Some(match best {
                        None => v,
                        Some(b) if name == "min" => b.min(v),
                        Some(b) => b.max(v),
                    });
                }
                best.ok_or_else(|| FormulaError {
                    position: *p,
                    message: format!("{name} needs an argument"),
                })
            }
            other => err(*p, format!("unknown function '{other}'")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    fn run(src: &str, vars: &[(&'static str, &str)]) -> Result<Decimal, FormulaError> {
        let e = parse_standard(src)?;
        let map: HashMap<&str, Decimal> = vars.iter().map(|(k, v)| (*k, d(v))).collect();
        eval(&e, &map)
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(run("0.1 + 0.2", &[]), Ok(d("0.3")));
        assert_eq!(
            run(
                "quantity * rate * 2",
                &[("quantity", "2.5"), ("rate", "30")]
            ),
            Ok(d("150"))
        );
        assert_eq!(run("-(1 - 3) * 2", &[]), Ok(d("4")));
        assert_eq!(run("1 + 2 * 3", &[]), Ok(d("7")));
        assert_eq!(run("(1 + 2) * 3", &[]), Ok(d("9")));
        assert_eq!(run("10 / 4", &[]), Ok(d("2.5")));
    }

    #[test]
    fn functions_and_comparisons() {
        assert_eq!(
            run("min(hours, 8) * rate", &[("hours", "10"), ("rate", "3")]),
            Ok(d("24"))
        );
        assert_eq!(run("max(1, 2, 3)", &[]), Ok(d("3")));
        assert_eq!(
            run(
                "if(age_days > 365, value / 2, value)",
                &[("age_days", "400"), ("value", "10")]
            ),
            Ok(d("5"))
        );
        assert_eq!(
            run(
                "if(age_days > 365, value / 2, value)",
                &[("age_days", "3"), ("value", "10")]
            ),
            Ok(d("10"))
        );
        assert_eq!(run("(1 <= 1) + (2 != 2)", &[]), Ok(d("1")));
    }

    #[test]
    fn errors_name_the_position() {
        let e = |src: &str| parse_standard(src).err().map(|e| (e.position, e.message));
        assert_eq!(e("quantity * salary").map(|x| x.0), Some(11));
        assert!(e("quantity * salary").is_some_and(|x| x.1.contains("unknown variable 'salary'")));
        assert_eq!(e("1 + ").map(|x| x.0), Some(4));
        assert_eq!(e("(1 + 2").map(|x| x.0), Some(6));
        assert_eq!(e("1 / 0").map(|x| x.0), Some(2));
        assert_eq!(
            e("1 / (2 - 2)").map(|x| x.1),
            Some("division by zero".into())
        );
        assert_eq!(e("pow(2, 3)").map(|x| x.0), Some(0));
        assert_eq!(e("if(1, 2)").map(|x| x.0), Some(0));
        assert_eq!(e("2 $ 3").map(|x| x.0), Some(2));
        assert_eq!(e("1 2").map(|x| x.0), Some(2));
        assert_eq!(
            e("quantity * (79228162514264337593543950335 * 2)").map(|x| x.1),
            Some("'*' overflows".into())
        );
        assert!(e("").is_some());
        assert!(e(&"(".repeat(60)).is_some());
        assert!(e(&"1+".repeat(600)).is_some());
    }

    #[test]
    fn evaluation_errors_not_panics() {
        assert_eq!(
            run("value / quantity", &[("value", "1"), ("quantity", "0")]).map_err(|e| e.position),
            Err(6)
        );
        let big = "79228162514264337593543950335";
        assert!(run(&format!("{big} * {big}"), &[]).is_err());
        assert!(run(&format!("{big} + {big}"), &[]).is_err());
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(src in ".{0,80}") {
            if let Ok(e) = parse_standard(&src) {
                let vars: HashMap<&str, Decimal> = VARIABLES.iter().map(|(n, _)| (*n, Decimal::ONE)).collect();
                let _ = eval(&e, &vars);
            }
        }

        #[test]
        fn never_panics_on_formula_shaped_input(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("quantity"), Just("rate"), Just("("), Just(")"), Just("+"), Just("-"), Just("*"), Just("/"),
                    Just("min("), Just("max("), Just("if("), Just(","), Just("<"), Just(">="), Just("0"), Just("2.5"),
                    Just("79228162514264337593543950335"), Just("0.0000000000000000000000000001"),
                ],
                0..40,
            )
        ) {
            let src = parts.concat();
            if let Ok(e) = parse_standard(&src) {
                let vars: HashMap<&str, Decimal> = VARIABLES.iter().map(|(n, _)| (*n, Decimal::TWO)).collect();
                let _ = eval(&e, &vars);
            }
        }
    }
}
