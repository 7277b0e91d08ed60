//! The small expression language of pipeline specs: field references (`price`,
//! `bid.auction`, and `$key`, `$ts`, `$value` for the record itself), numbers, strings,
//! `true`/`false`/`null`, arithmetic (`+ - * / %`), comparisons (`== != < <= > >=`),
//! `and`/`or`/`not`, parentheses, and `len(x)`. Not SQL: just enough for map, filter and
//! key selectors.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::value::{FieldName, Val};

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal.
    Lit(Val),
    /// A field path below `$key`, `$ts` or `$value` (a bare `price` is `$value.price`).
    Field(Base, Vec<FieldName>),
    /// `op(a, b)`.
    Bin(Op, Box<Expr>, Box<Expr>),
    /// `not a`, `-a`.
    Not(Box<Expr>),
    /// `-a`.
    Neg(Box<Expr>),
    /// `len(a)`: characters of a string, elements of an array.
    Len(Box<Expr>),
}

/// The part of the record a field path starts at, resolved once at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `$key`.
    Key,
    /// `$ts`: a number, with no fields.
    Ts,
    /// `$value`, where bare names start.
    Value,
}

/// Binary operators, by precedence group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl Op {
    /// `+ - * / %`.
    fn is_arithmetic(self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem)
    }
}

/// What an expression sees of a record.
pub struct Scope<'a> {
    /// The key.
    pub key: &'a Val,
    /// The value.
    pub value: &'a Val,
    /// Event time, ms.
    pub ts: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Tok::Num(
                text.parse().map_err(|_| format!("bad number {text:?}"))?,
            ));
        } else if c == '\'' || c == '"' {
            let quote = c;
            i += 1;
            let start = i;
            while i < chars.len() && chars[i] != quote {
                i += 1;
            }
            if i == chars.len() {
                return Err("unterminated string".into());
            }
            out.push(Tok::Str(chars[start..i].iter().collect()));
            i += 1;
        } else if c.is_alphabetic() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "_$.".contains(chars[i])) {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let sym = ["==", "!=", "<=", ">="]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["+", "-", "*", "/", "%", "<", ">", "(", ")", ","]
                        .into_iter()
                        .find(|s| s.starts_with(c))
                })
                .ok_or_else(|| format!("unexpected {c:?}"))?;
            i += sym.len();
            out.push(Tok::Sym(sym));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.peek()
            == Some(&Tok::Sym(match s {
                "(" => "(",
                ")" => ")",
                "," => ",",
                _ => return false,
            }))
        {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn binary(&mut self, level: usize) -> Result<Expr, String> {
        const LEVELS: [&[(&str, Op)]; 5] = [
            &[("or", Op::Or)],
            &[("and", Op::And)],
            &[
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
            ],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div), ("%", Op::Rem)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let op = match self.peek() {
                Some(Tok::Sym(s)) => LEVELS[level].iter().find(|(t, _)| t == s),
                Some(Tok::Ident(w)) => LEVELS[level].iter().find(|(t, _)| t == w),
                _ => None,
            };
            let Some((_, op)) = op else { return Ok(left) };
            self.at += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Bin(*op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek().cloned() {
            Some(Tok::Sym("-")) => {
                self.at += 1;
                Ok(Expr::Neg(Box::new(self.unary()?)))
            }
            Some(Tok::Ident(w)) if w == "not" => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            _ => self.atom(),
        }
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let tok = self.peek().cloned().ok_or("the expression ends early")?;
        self.at += 1;
        match tok {
            Tok::Num(n) => Ok(Expr::Lit(number(n))),
            Tok::Str(s) => Ok(Expr::Lit(Val::from(s))),
            Tok::Sym("(") => {
                let e = self.binary(0)?;
                if !self.eat_sym(")") {
                    return Err("missing ')'".into());
                }
                Ok(e)
            }
            Tok::Ident(w) => match w.as_str() {
                "true" => Ok(Expr::Lit(Val::Bool(true))),
                "false" => Ok(Expr::Lit(Val::Bool(false))),
                "null" => Ok(Expr::Lit(Val::Null)),
                "len" if self.peek() == Some(&Tok::Sym("(")) => {
                    self.at += 1;
                    let e = self.binary(0)?;
                    if !self.eat_sym(")") {
                        return Err("missing ')' after len(".into());
                    }
                    Ok(Expr::Len(Box::new(e)))
                }
                _ => {
                    let mut path: Vec<FieldName> = w.split('.').map(FieldName::new).collect();
                    let base = match path[0].as_str() {
                        "$key" => Some(Base::Key),
                        "$ts" => Some(Base::Ts),
                        "$value" => Some(Base::Value),
                        _ => None,
                    };
                    Ok(match base {
                        Some(base) => Expr::Field(base, path.split_off(1)),
                        None => Expr::Field(Base::Value, path),
                    })
                }
            },
            Tok::Sym(s) => Err(format!("unexpected {s:?}")),
        }
    }
}

/// `n` as a value: an integer when it is a whole number an `f64` holds exactly (below
/// 9·10^15), else a float (`null` for NaN and infinities).
pub(crate) fn number(n: f64) -> Val {
    Num::from_f64(n).map_or(Val::Null, Num::val)
}

impl Expr {
    /// Parses `src`.
    ///
    /// # Errors
    /// What is wrong, in words.
    pub fn parse(src: &str) -> Result<Expr, String> {
        let mut p = Parser {
            toks: lex(src)?,
            at: 0,
        };
        let e = p.binary(0)?;
        if p.at != p.toks.len() {
            return Err(format!(
                "unexpected {:?} after the expression",
                p.toks[p.at]
            ));
        }
        Ok(e)
    }

    /// Evaluates against a record; a missing field is `null`, arithmetic on non-numbers is
    /// `null` (so a filter on it is false), never a panic.
    pub fn eval(&self, s: &Scope<'_>) -> Val {
        // A top-level field of the value, the most common expression (a map's copied
        // fields, a key), read in place: no call into the general walk, no `Cow` to
        // unwrap. With the in-line name comparison of `Obj::get_named`, Nexmark Q1 went
        // from 616 to 585 M instructions for 300,000 events (callgrind).
        if let Some(name) = self.value_field() {
            return s.value.get_named(name).cloned().unwrap_or(Val::Null);
        }
        // Arithmetic on numbers (`price * 0.908`): computed on numbers, one `Val` made
        // for the result.
        if matches!(self, Expr::Bin(op, ..) if op.is_arithmetic())
            && let Some(n) = self.num(s)
        {
            return n.val();
        }
        self.eval_ref(s).into_owned()
    }

    /// The value's top-level field this expression is (as `price` is), if it is one.
    fn value_field(&self) -> Option<&FieldName> {
        match self {
            Expr::Field(Base::Value, path) => match path.as_slice() {
                [name] => Some(name),
                _ => None,
            },
            _ => None,
        }
    }

    /// Whether the expression is the value's top-level field `name`, as `price` is.
    pub fn is_value_field(&self, name: &str) -> bool {
        self.value_field().is_some_and(|n| n.as_str() == name)
    }

    /// The expression's value as a number, and whether it is an integer that fits an
    /// `i64`: what an aggregation takes from a record. Read where it is, not copied out
    /// and dropped as [`Expr::eval`] would (a `max: price` took 181 instructions a record
    /// so, callgrind).
    pub fn number(&self, s: &Scope<'_>) -> (Option<f64>, bool) {
        if let Some(v) = self.operand(s) {
            return (v.as_f64(), v.is_i64());
        }
        if let Some(n) = self.num(s) {
            return (Some(n.f64()), matches!(n, Num::Int(_)));
        }
        let v = self.eval_ref(s);
        (v.as_f64(), v.is_i64())
    }

    /// Whether the expression is true of a record (see [`truthy`]): a filter.
    pub fn holds(&self, s: &Scope<'_>) -> bool {
        match self {
            // A comparison of numbers, compared as numbers: no `Val` made for either
            // side, nor for the result (Nexmark Q2's `auction % 123 == 0` made three).
            Expr::Bin(op @ (Op::Eq | Op::Ne | Op::Lt | Op::Le | Op::Gt | Op::Ge), a, b) => {
                match (a.num_operand(s), b.num_operand(s)) {
                    (Some(x), Some(y)) => compare(*op, x.f64(), y.f64()),
                    _ => truthy(&self.eval_ref(s)),
                }
            }
            // Neither side has an effect, so stopping at the first that decides is the
            // same as evaluating both.
            Expr::Bin(Op::And, a, b) => a.holds(s) && b.holds(s),
            Expr::Bin(Op::Or, a, b) => a.holds(s) || b.holds(s),
            Expr::Not(e) => !e.holds(s),
            _ => truthy(&self.eval_ref(s)),
        }
    }

    /// The expression's value when it is a number, computed as [`Expr::eval`] computes it
    /// but without a `Val` for each step; `None` when it is no number (a string, null, a
    /// division by zero...), for the caller to take the general walk, which makes what
    /// that is.
    fn num(&self, s: &Scope<'_>) -> Option<Num> {
        match self {
            Expr::Lit(v) => Num::of(v),
            Expr::Field(Base::Ts, path) if path.is_empty() => Some(Num::Int(s.ts)),
            Expr::Field(base, path) => field(*base, path, s).and_then(Num::of),
            Expr::Neg(e) => Num::from_f64(-e.num(s)?.f64()),
            Expr::Bin(op @ (Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem), a, b) => {
                arithmetic(*op, a.num_operand(s)?, b.num_operand(s)?)
            }
            _ => None,
        }
    }

    /// As [`Expr::num`], with a literal or a top-level field read in line (see
    /// [`Expr::operand`]), not through a call.
    #[inline]
    fn num_operand(&self, s: &Scope<'_>) -> Option<Num> {
        match self.operand(s) {
            Some(v) => Num::of(v),
            None => self.num(s),
        }
    }

    /// As [`Expr::eval`], borrowing what it can: a field or a literal is read in place,
    /// not copied (and dropped) to be compared or computed with. Only results are made.
    fn eval_ref<'v>(&'v self, s: &Scope<'v>) -> Cow<'v, Val> {
        match self {
            Expr::Lit(v) => Cow::Borrowed(v),
            Expr::Field(Base::Ts, path) if path.is_empty() => Cow::Owned(Val::from(s.ts)),
            Expr::Field(base, path) => {
                field(*base, path, s).map_or(Cow::Owned(Val::Null), Cow::Borrowed)
            }
            Expr::Not(e) => Cow::Owned(Val::Bool(!truthy(&e.eval_ref(s)))),
            Expr::Neg(e) => Cow::Owned(e.eval_ref(s).as_f64().map_or(Val::Null, |n| number(-n))),
            Expr::Len(e) => Cow::Owned(match &*e.eval_ref(s) {
                Val::Str(t) => Val::from(t.chars().count()),
                Val::Arr(a) => Val::from(a.len()),
                _ => Val::Null,
            }),
            Expr::Bin(op, a, b) => Cow::Owned(match (a.operand(s), b.operand(s)) {
                (Some(x), Some(y)) => binary(*op, x, y),
                _ => binary(*op, &a.eval_ref(s), &b.eval_ref(s)),
            }),
        }
    }

    /// A literal or a top-level field of the value (null when missing), in place; `None`
    /// for any other expression. The operands of most arithmetic and comparisons
    /// (`price * 0.908`, `auction % 123 == 0`) are these: read here, they skip a call
    /// into the general walk each, and its `Cow`.
    #[inline]
    fn operand<'v>(&'v self, s: &Scope<'v>) -> Option<&'v Val> {
        static NULL: Val = Val::Null;
        // One match, not `value_field` and then a second: this runs for every operand of
        // every record (through `value_field`, Nexmark Q2 took 0.4 % more instructions).
        match self {
            Expr::Lit(v) => Some(v),
            Expr::Field(Base::Value, path) => match path.as_slice() {
                [name] => Some(s.value.get_named(name).unwrap_or(&NULL)),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `x op y`.
fn binary(op: Op, x: &Val, y: &Val) -> Val {
    match op {
        Op::Or => Val::Bool(truthy(x) || truthy(y)),
        Op::And => Val::Bool(truthy(x) && truthy(y)),
        Op::Eq => Val::Bool(same(x, y)),
        Op::Ne => Val::Bool(!same(x, y)),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => Val::Bool(match (x, y) {
            (Val::Str(p), Val::Str(q)) => ordered(op, p.cmp(q)),
            _ => x
                .as_f64()
                .zip(y.as_f64())
                .is_some_and(|(p, q)| compare(op, p, q)),
        }),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Rem => {
            if let (Op::Add, Val::Str(p), Val::Str(q)) = (op, x, y) {
                let mut joined = p.clone();
                joined.push_str(q);
                return Val::Str(joined);
            }
            match (Num::of(x), Num::of(y)) {
                (Some(p), Some(q)) => arithmetic(op, p, q).map_or(Val::Null, Num::val),
                _ => Val::Null,
            }
        }
    }
}

/// The field at `path` below `base`, in place; `None` when missing (`$ts`, a number, has
/// no fields: the caller reads `$ts` itself).
fn field<'v>(base: Base, path: &[FieldName], s: &Scope<'v>) -> Option<&'v Val> {
    let mut v = match base {
        Base::Key => s.key,
        Base::Value => s.value,
        Base::Ts => return None,
    };
    for part in path {
        v = v.get_named(part)?;
    }
    Some(v)
}

/// A number on the way to a result (see [`Expr::num`]).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// `v` if it is a number: an integer when `Val::as_i64` reads one, as [`binary`]
    /// tells integers from floats.
    #[inline]
    fn of(v: &Val) -> Option<Num> {
        let Val::Num(n) = v else { return None };
        match n.as_i64() {
            Some(i) => Some(Num::Int(i)),
            None => n.as_f64().map(Num::Float),
        }
    }

    /// A computed `f64` as [`number`] makes it a value: whole ones below 9·10^15 are
    /// integers; NaN and infinities are null, so no number.
    #[inline]
    fn from_f64(n: f64) -> Option<Num> {
        // Whether `n` is a whole number, by a round trip through `i64` (two instructions)
        // rather than `fract`, a call into libm per computed value. NaN and infinities
        // fail it (NaN casts to 0, infinities saturate).
        let whole = n as i64;
        if whole as f64 == n && n.abs() < 9e15 {
            Some(Num::Int(whole))
        } else if n.is_finite() {
            Some(Num::Float(n))
        } else {
            None
        }
    }

    fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    #[inline]
    fn val(self) -> Val {
        match self {
            Num::Int(i) => Val::from(i),
            Num::Float(f) => Val::float(f),
        }
    }
}

/// `x op y` for an arithmetic `op` on numbers; `None` where that is null (a division or
/// remainder by zero). Integers stay exact (an f64 holds 53 bits), and skip the float
/// round trip; an integer result that overflows is computed as floats.
#[inline]
fn arithmetic(op: Op, x: Num, y: Num) -> Option<Num> {
    if let (Num::Int(p), Num::Int(q)) = (x, y) {
        let r = match op {
            Op::Add => p.checked_add(q),
            Op::Sub => p.checked_sub(q),
            Op::Mul => p.checked_mul(q),
            Op::Rem if q == 0 => return None,
            Op::Rem => p.checked_rem(q),
            _ => None,
        };
        if let Some(r) = r {
            return Some(Num::Int(r));
        }
    }
    let (p, q) = (x.f64(), y.f64());
    let r = match op {
        Op::Add => p + q,
        Op::Sub => p - q,
        Op::Mul => p * q,
        Op::Div if q == 0.0 => return None,
        Op::Div => p / q,
        _ if q == 0.0 => return None,
        _ => p % q,
    };
    Num::from_f64(r)
}

/// `p op q` for a comparison `op` of two numbers.
#[inline]
fn compare(op: Op, p: f64, q: f64) -> bool {
    match op {
        Op::Eq => p == q,
        Op::Ne => p != q,
        _ => p.partial_cmp(&q).is_some_and(|o| ordered(op, o)),
    }
}

/// Whether `o` is what the order comparison `op` asks for.
#[inline]
fn ordered(op: Op, o: Ordering) -> bool {
    match op {
        Op::Lt => o.is_lt(),
        Op::Le => o.is_le(),
        Op::Gt => o.is_gt(),
        _ => o.is_ge(),
    }
}

/// Numbers compare by value (`1 == 1.0`), everything else structurally.
fn same(x: &Val, y: &Val) -> bool {
    match (x.as_f64(), y.as_f64()) {
        (Some(p), Some(q)) => p == q,
        _ => x == y,
    }
}

/// `false`, `null`, `0` and `""` are false.
pub fn truthy(v: &Val) -> bool {
    match v {
        Val::Null => false,
        Val::Bool(b) => *b,
        Val::Num(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Val::Str(s) => !s.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn eval(src: &str, value: serde_json::Value) -> serde_json::Value {
        Expr::parse(src)
            .expect(src)
            .eval(&Scope {
                key: &Val::from("k"),
                value: &Val::from_json(value),
                ts: 7,
            })
            .to_json()
    }

    #[test]
    fn arithmetic_comparisons_fields_and_functions() {
        let v = json!({"price": 100, "bid": {"auction": 246}, "name": "alice"});
        assert_eq!(eval("price * 0.908", v.clone()), json!(90.8));
        assert_eq!(eval("bid.auction % 123 == 0", v.clone()), json!(true));
        assert_eq!(eval("len(name) + 1", v.clone()), json!(6));
        assert_eq!(
            eval("price > 10 and not (name == 'bob')", v.clone()),
            json!(true)
        );
        assert_eq!(eval("$key + '-' + name", v.clone()), json!("k-alice"));
        assert_eq!(eval("$ts", v.clone()), json!(7));
        assert_eq!(eval("missing + 1", v.clone()), serde_json::Value::Null);
        assert_eq!(eval("price / 0", v), serde_json::Value::Null);
        assert!(Expr::parse("price >").is_err());
        assert!(Expr::parse("(price").is_err());
        assert!(Expr::parse("price # 2").is_err());
    }

    /// The numeric shortcuts (`Expr::num` behind `eval`, `holds` and `number`) give what
    /// the general walk gives, over every pairing of operands of every kind (integers,
    /// floats, an integer too big for an `i64`, strings, null, booleans, missing fields)
    /// by every operator, nested two deep.
    #[test]
    fn the_numeric_shortcuts_agree_with_the_general_walk() {
        let value = Val::from_json(json!({
            "i": 7, "z": 0, "neg": -3, "f": 2.5, "whole": 4.0, "big": 18_000_000_000_000_000_000_u64,
            "huge": 9_007_199_254_740_993_i64, "s": "ab", "n": null, "t": true,
        }));
        let key = Val::from(12_i64);
        let scope = Scope {
            key: &key,
            value: &value,
            ts: 1_000,
        };
        let operands = [
            "i", "z", "neg", "f", "whole", "big", "huge", "s", "n", "t", "missing", "$key", "$ts",
            "$ts.x", "0", "3", "0.5", "'ab'", "-i", "-f", "-s",
        ];
        let ops = [
            "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "and", "or",
        ];
        let mut exprs = Vec::new();
        for a in operands {
            exprs.push(a.to_owned());
            for op in ops {
                for b in ["i", "f", "huge", "s", "n", "0", "2", "0.5"] {
                    exprs.push(format!("{a} {op} {b}"));
                    exprs.push(format!("({a} {op} {b}) % 4 == 1"));
                    exprs.push(format!("not ({a} {op} {b}) or {b} * 2 > 3"));
                }
            }
        }
        for src in &exprs {
            let e = Expr::parse(src).expect(src);
            let general = e.eval_ref(&scope).into_owned();
            assert_eq!(e.eval(&scope), general, "eval {src}");
            assert_eq!(e.holds(&scope), truthy(&general), "holds {src}");
            assert_eq!(
                e.number(&scope),
                (general.as_f64(), general.is_i64()),
                "number {src}"
            );
        }
        assert!(exprs.len() > 3_000);
    }

    #[test]
    fn integers_stay_exact_and_paths_start_at_the_record() {
        // 2^53 + 1 is no f64: integer arithmetic must not go through one.
        let v = json!({"id": 9_007_199_254_740_993_i64, "n": -7, "inner": {"x": 3}});
        assert_eq!(eval("id + 0", v.clone()), json!(9_007_199_254_740_993_i64));
        assert_eq!(eval("id % 10", v.clone()), json!(3));
        assert_eq!(eval("n % 3", v.clone()), json!(-1));
        assert_eq!(eval("n % 0", v.clone()), serde_json::Value::Null);
        assert_eq!(eval("n / 2", v.clone()), json!(-3.5));
        // An overflow falls back to floats rather than wrapping.
        assert_eq!(eval("id * id", v.clone()), json!(8.112963841460668e31));
        assert_eq!(eval("$value.inner.x", v.clone()), json!(3));
        assert_eq!(eval("$ts.x", v.clone()), serde_json::Value::Null);
        // A whole result is an integer, anything else a float; out of range, a float.
        assert_eq!(eval("n * 0.5 + 0.5", v.clone()), json!(-3));
        assert_eq!(eval("n * 0.25", v.clone()), json!(-1.75));
        assert_eq!(eval("-(n * 0.0)", v.clone()), json!(0));
        assert_eq!(eval("1000000000000000 * 10.5", v.clone()), json!(1.05e16));
        let key = Expr::parse("$key.id").expect("parse").eval(&Scope {
            key: &Val::from_json(json!({"id": 5})),
            value: &Val::Null,
            ts: 0,
        });
        assert_eq!(key.to_json(), json!(5));
    }
}
