//! The demo agent: deterministic, no network. It reads the message, picks a built-in tool,
//! calls it and answers.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Agent, AgentError, AgentFuture, Run};

/// Deterministic agent for demos and tests: for the same message it emits the same events.
///
/// ## Behavior
/// - `agent_thinking` ("Reading your message (N characters)."), then one tool call
///   ([`BuiltinTool::for_message`]): `calculator` when the message is arithmetic, `clock`
///   when it asks for the time, `word_count` otherwise; then `agent_thinking` ("Composing
///   the answer.") and the answer.
/// - The clock's reading is kept in the run state, so a repeated run answers the same.
/// - With a step delay it pauses before each step, so a browser can watch the run stream in.
#[derive(Debug, Clone, Default)]
pub struct DemoAgent {
    step: Duration,
}

impl DemoAgent {
    /// A demo agent that pauses `step` before each step.
    pub fn new(step: Duration) -> DemoAgent {
        DemoAgent { step }
    }

    async fn pause(&self) {
        if !self.step.is_zero() {
            tokio::time::sleep(self.step).await;
        }
    }
}

impl Agent for DemoAgent {
    fn run<'a>(&'a self, run: &'a mut Run) -> AgentFuture<'a> {
        Box::pin(async move {
            let text = run.text().to_owned();
            self.pause().await;
            run.thinking(&format!(
                "Reading your message ({} characters).",
                text.chars().count()
            ))
            .await?;
            let (tool, input) = BuiltinTool::for_message(&text);
            self.pause().await;
            let result = run
                .tool(tool.name(), input, |input| async move { tool.call(&input) })
                .await?;
            self.pause().await;
            run.thinking("Composing the answer.").await?;
            self.pause().await;
            tool.answer(&result)
                .ok_or_else(|| AgentError::Failed(format!("tool {} gave {result}", tool.name())))
        })
    }
}

/// The demo agent's tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinTool {
    /// Counts words and characters.
    WordCount,
    /// Reads the clock (UTC).
    Clock,
    /// Evaluates `+ - * /` with parentheses.
    Calculator,
}

impl BuiltinTool {
    /// The tool for `message` and its input.
    pub fn for_message(message: &str) -> (BuiltinTool, Value) {
        if calculate(message).is_ok() {
            return (
                BuiltinTool::Calculator,
                json!({ "expression": message.trim() }),
            );
        }
        let lower = message.to_lowercase();
        if lower.contains("time") || lower.contains("clock") {
            return (BuiltinTool::Clock, json!({}));
        }
        (BuiltinTool::WordCount, json!({ "text": message }))
    }

    /// Its name (also the name of its rate limit).
    pub fn name(self) -> &'static str {
        match self {
            BuiltinTool::WordCount => "word_count",
            BuiltinTool::Clock => "clock",
            BuiltinTool::Calculator => "calculator",
        }
    }

    /// Calls it.
    pub fn call(self, input: &Value) -> Result<Value, String> {
        let text = |field: &str| {
            input[field]
                .as_str()
                .ok_or_else(|| format!("input lacks {field:?}"))
        };
        match self {
            BuiltinTool::WordCount => {
                let text = text("text")?;
                Ok(json!({
                    "words": text.split_whitespace().count(),
                    "characters": text.chars().count(),
                }))
            }
            BuiltinTool::Clock => {
                let secs = redis_ssot::clock::unix_secs();
                Ok(json!({ "unix": secs, "utc": clock_utc(secs) }))
            }
            BuiltinTool::Calculator => Ok(json!({ "value": calculate(text("expression")?)? })),
        }
    }

    /// The answer for a result of this tool.
    fn answer(self, result: &Value) -> Option<String> {
        Some(match self {
            BuiltinTool::WordCount => format!(
                "Your message has {} words and {} characters.",
                result["words"].as_u64()?,
                result["characters"].as_u64()?
            ),
            BuiltinTool::Clock => format!("It is {} UTC.", result["utc"].as_str()?),
            BuiltinTool::Calculator => format!("That makes {}.", result["value"].as_f64()?),
        })
    }
}

fn clock_utc(unix: u64) -> String {
    let day = unix % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// Deepest nesting of parentheses and unary minus the calculator follows. The parser recurses
/// once per level (a few hundred bytes of stack each), so 64 levels stay far below any
/// thread's stack, whatever the message: `"(" x 10000` is an error, not a crash.
pub(crate) const MAX_NESTING: usize = 64;

/// Evaluates an arithmetic expression: numbers, `+ - * /`, parentheses, unary minus. Needs
/// at least one operator, so a lone number is not "arithmetic". Nesting deeper than
/// [`MAX_NESTING`] is an error.
pub(crate) fn calculate(input: &str) -> Result<f64, String> {
    let tokens: Vec<char> = input.chars().filter(|c| !c.is_whitespace()).collect();
    if !tokens.iter().any(|c| "+-*/".contains(*c)) {
        return Err("no operator".into());
    }
    let mut parser = Calc {
        tokens,
        at: 0,
        depth: 0,
    };
    let value = parser.sum()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    if !value.is_finite() {
        return Err("result is not a finite number".into());
    }
    Ok(value)
}

struct Calc {
    tokens: Vec<char>,
    at: usize,
    /// Parentheses and unary minus open around the current position.
    depth: usize,
}

impl Calc {
    fn peek(&self) -> Option<char> {
        self.tokens.get(self.at).copied()
    }

    fn sum(&mut self) -> Result<f64, String> {
        let mut value = self.product()?;
        while let Some(op @ ('+' | '-')) = self.peek() {
            self.at += 1;
            let rhs = self.product()?;
            value = if op == '+' { value + rhs } else { value - rhs };
        }
        Ok(value)
    }

    fn product(&mut self) -> Result<f64, String> {
        let mut value = self.factor()?;
        while let Some(op @ ('*' | '/')) = self.peek() {
            self.at += 1;
            let rhs = self.factor()?;
            if op == '/' && rhs == 0.0 {
                return Err("division by zero".into());
            }
            value = if op == '*' { value * rhs } else { value / rhs };
        }
        Ok(value)
    }

    fn factor(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some('-') => {
                self.at += 1;
                Ok(-self.nested(Calc::factor)?)
            }
            Some('(') => {
                self.at += 1;
                let value = self.nested(Calc::sum)?;
                if self.peek() != Some(')') {
                    return Err("missing ')'".into());
                }
                self.at += 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
                    self.at += 1;
                }
                let number: String = self.tokens[start..self.at].iter().collect();
                number.parse().map_err(|_| format!("bad number {number:?}"))
            }
            Some(c) => Err(format!("unexpected {c:?}")),
            None => Err("unexpected end".into()),
        }
    }

    /// Parses one level deeper with `parse`, refusing to go past [`MAX_NESTING`].
    fn nested(&mut self, parse: fn(&mut Calc) -> Result<f64, String>) -> Result<f64, String> {
        if self.depth == MAX_NESTING {
            return Err(format!("nested deeper than {MAX_NESTING} levels"));
        }
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calculator_and_tool_choice() {
        assert_eq!(calculate("1 + 2 * (3 - 1)"), Ok(5.0));
        assert_eq!(calculate("-4/2"), Ok(-2.0));
        assert!(calculate("1/0").is_err());
        assert!(calculate("42").is_err());
        assert!(calculate("hello + world").is_err());
        assert_eq!(BuiltinTool::for_message("2*21").0, BuiltinTool::Calculator);
        assert_eq!(
            BuiltinTool::for_message("What time is it?").0,
            BuiltinTool::Clock
        );
        assert_eq!(
            BuiltinTool::for_message("hi there").0,
            BuiltinTool::WordCount
        );
        let (tool, input) = BuiltinTool::for_message("hi there you");
        let result = tool.call(&input).unwrap();
        assert_eq!(
            tool.answer(&result).unwrap(),
            "Your message has 3 words and 12 characters."
        );
        assert_eq!(clock_utc(3661), "01:01:01");
    }

    #[test]
    fn nesting_is_bounded_instead_of_overflowing_the_stack() {
        let deep = |n: usize| format!("{}1+1{}", "(".repeat(n), ")".repeat(n));
        assert_eq!(calculate(&deep(MAX_NESTING)), Ok(2.0));
        let too_deep = Err(format!("nested deeper than {MAX_NESTING} levels"));
        assert_eq!(calculate(&deep(MAX_NESTING + 1)), too_deep);
        // The poison pill of issue 12: unclosed, 10,000 deep.
        assert_eq!(calculate(&format!("{}1+1", "(".repeat(10_000))), too_deep);
        assert_eq!(calculate(&format!("{}1+1", "-".repeat(10_000))), too_deep);
        assert_eq!(calculate(&format!("{}1+1", "-(".repeat(5_000))), too_deep);
        let (tool, _) = BuiltinTool::for_message(&"(".repeat(10_000));
        assert_eq!(tool, BuiltinTool::WordCount);
    }
}
