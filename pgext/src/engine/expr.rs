//! The host's one expression form, used by `expression` edge conditions and `expression`
//! input ports, plus the path syntax the other condition types use for `left`.
//!
//! Grammar (whitespace between tokens is ignored):
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := not ("&&" not)*
//! not     := "!" not | compare
//! compare := operand (("==" | "!=" | "<" | "<=" | ">" | ">=") operand)?
//! operand := "(" expr ")" | number | 'text' | "text" | true | false | null | path
//! path    := name ("." name | "[" digits "]")*      name := [A-Za-z_$][A-Za-z0-9_$-]*
//! ```
//! `==`/`!=` compare JSON values (numbers numerically); ordering works on two numbers or two
//! strings and is false otherwise; `&&`, `||`, `!` use JavaScript truthiness and yield
//! booleans. A missing path is `null`. Evaluation never fails.

use serde_json::Value;

const MAX_SOURCE_LEN: usize = 4096;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Path(Vec<Segment>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    pub fn parse(src: &str) -> Result<Expr, String> {
        if src.len() > MAX_SOURCE_LEN {
            return Err(format!("expression longer than {MAX_SOURCE_LEN} bytes"));
        }
        let mut p = Parser {
            s: src.as_bytes(),
            i: 0,
            depth: 0,
        };
        let e = p.or()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected {:?} at offset {}", &src[p.i..], p.i));
        }
        Ok(e)
    }

    /// Evaluate against `resolve`, which maps a path to its value (or `None`: missing).
    pub fn eval(&self, resolve: &dyn Fn(&[Segment]) -> Option<Value>) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Path(p) => resolve(p).unwrap_or(Value::Null),
            Expr::Not(e) => Value::Bool(!truthy(&e.eval(resolve))),
            Expr::And(a, b) => Value::Bool(truthy(&a.eval(resolve)) && truthy(&b.eval(resolve))),
            Expr::Or(a, b) => Value::Bool(truthy(&a.eval(resolve)) || truthy(&b.eval(resolve))),
            Expr::Compare(op, a, b) => {
                Value::Bool(compare(*op, &a.eval(resolve), &b.eval(resolve)))
            }
        }
    }
}

/// JavaScript truthiness: null, false, 0, NaN and "" are false; everything else is true.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// JSON equality with numbers compared by value (1 == 1.0).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    use std::cmp::Ordering;
    let ord = match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .and_then(|x| y.as_f64().and_then(|y| x.partial_cmp(&y))),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    };
    match op {
        CmpOp::Eq => json_eq(a, b),
        CmpOp::Ne => !json_eq(a, b),
        CmpOp::Lt => ord == Some(Ordering::Less),
        CmpOp::Le => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => ord == Some(Ordering::Greater),
        CmpOp::Ge => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

/// Parse a bare path such as `output.items[0].name`.
pub fn parse_path(src: &str) -> Result<Vec<Segment>, String> {
    let mut p = Parser {
        s: src.trim().as_bytes(),
        i: 0,
        depth: 0,
    };
    let path = p.path()?;
    if p.i != p.s.len() {
        return Err(format!(
            "unexpected {:?} in path {src:?}",
            String::from_utf8_lossy(&p.s[p.i..])
        ));
    }
    Ok(path)
}

/// Follow a path into a JSON value.
pub fn lookup<'a>(mut v: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    for seg in path {
        v = match (seg, v) {
            (Segment::Key(k), Value::Object(m)) => m.get(k)?,
            (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }

    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("expression nested deeper than {MAX_DEPTH}"));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.nest(|p| {
            let mut e = p.and()?;
            while p.eat("||") {
                e = Expr::Or(Box::new(e), Box::new(p.and()?));
            }
            Ok(e)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, String> {
        self.ws();
        if self.s.get(self.i) == Some(&b'!') && self.s.get(self.i + 1) != Some(&b'=') {
            self.i += 1;
            return self.nest(|p| Ok(Expr::Not(Box::new(p.not()?))));
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<Expr, String> {
        let left = self.operand()?;
        for (tok, op) in [
            ("==", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ] {
            if self.eat(tok) {
                return Ok(Expr::Compare(op, Box::new(left), Box::new(self.operand()?)));
            }
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<Expr, String> {
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err("expression ended early".into());
        };
        match c {
            b'(' => {
                self.i += 1;
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(format!("missing ')' at offset {}", self.i));
                }
                Ok(e)
            }
            b'\'' | b'"' => self.string(c).map(|s| Expr::Literal(Value::String(s))),
            b'-' | b'0'..=b'9' => self.number(),
            _ => {
                let start = self.i;
                let path = self.path()?;
                let word = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                Ok(match word {
                    "true" => Expr::Literal(Value::Bool(true)),
                    "false" => Expr::Literal(Value::Bool(false)),
                    "null" => Expr::Literal(Value::Null),
                    _ => Expr::Path(path),
                })
            }
        }
    }

    fn string(&mut self, quote: u8) -> Result<String, String> {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            match c {
                b'\\' => {
                    let Some(&n) = self.s.get(self.i) else { break };
                    self.i += 1;
                    out.push(match n {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                c if c == quote => {
                    return String::from_utf8(out).map_err(|_| "invalid UTF-8 in string".into())
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }

    fn number(&mut self) -> Result<Expr, String> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        while self.i < self.s.len()
            && matches!(
                self.s[self.i],
                b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
            )
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
        let n: f64 = text.parse().map_err(|_| format!("bad number {text:?}"))?;
        Ok(Expr::Literal(
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        ))
    }

    fn name(&mut self) -> Result<String, String> {
        let start = self.i;
        while let Some(&c) = self.s.get(self.i) {
            let ok = c.is_ascii_alphabetic()
                || c == b'_'
                || c == b'$'
                || (self.i > start && (c.is_ascii_digit() || c == b'-'));
            if !ok {
                break;
            }
            self.i += 1;
        }
        if self.i == start {
            return Err(format!("expected a name at offset {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn path(&mut self) -> Result<Vec<Segment>, String> {
        let mut segs = vec![Segment::Key(self.name()?)];
        loop {
            match self.s.get(self.i) {
                Some(b'.') => {
                    self.i += 1;
                    segs.push(Segment::Key(self.name()?));
                }
                Some(b'[') => {
                    self.i += 1;
                    let start = self.i;
                    while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                        self.i += 1;
                    }
                    let idx = std::str::from_utf8(&self.s[start..self.i])
                        .ok()
                        .and_then(|t| t.parse().ok());
                    if idx.is_none() || self.s.get(self.i) != Some(&b']') {
                        return Err(format!("bad index at offset {start}"));
                    }
                    self.i += 1;
                    segs.push(Segment::Index(idx.unwrap_or(0)));
                }
                _ => return Ok(segs),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, scope: Value) -> Value {
        Expr::parse(src)
            .unwrap()
            .eval(&|p| lookup(&scope, p).cloned())
    }

    #[test]
    fn compares_and_combines() {
        let s = json!({"output": {"n": 3, "tag": "blue", "items": [1, {"k": "v"}]}, "variables": {"flag": true}});
        assert_eq!(
            eval("output.n > 2 && variables.flag", s.clone()),
            json!(true)
        );
        assert_eq!(
            eval("output.n >= 4 || output.tag == 'blue'", s.clone()),
            json!(true)
        );
        assert_eq!(eval("!(output.tag != \"blue\")", s.clone()), json!(true));
        assert_eq!(eval("output.items[1].k == 'v'", s.clone()), json!(true));
        assert_eq!(eval("output.n == 3.0", s.clone()), json!(true));
        assert_eq!(eval("output.missing", s.clone()), Value::Null);
        assert_eq!(eval("output.tag < 5", s), json!(false));
    }

    #[test]
    fn truthiness_is_javascript_like() {
        for v in [json!(null), json!(false), json!(0), json!("")] {
            assert!(!truthy(&v), "{v}");
        }
        for v in [json!(true), json!(1), json!("x"), json!([]), json!({})] {
            assert!(truthy(&v), "{v}");
        }
    }

    #[test]
    fn rejects_malformed_and_hostile_input() {
        for bad in ["", "a ==", "(a", "a b", "'open", "a[x]", "1 == == 2"] {
            assert!(Expr::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let deep = "(".repeat(500) + "a" + &")".repeat(500);
        assert!(Expr::parse(&deep).is_err());
        assert!(Expr::parse(&"a".repeat(5000)).is_err());
    }

    #[test]
    fn paths_parse_and_lookup() {
        let p = parse_path("output.items[2].name").unwrap();
        assert_eq!(p.len(), 4);
        let v = json!({"output": {"items": [0, 1, {"name": "x"}]}});
        assert_eq!(lookup(&v, &p), Some(&json!("x")));
        assert!(parse_path("a..b").is_err());
    }
}
