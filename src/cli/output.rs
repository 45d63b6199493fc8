//! What commands print besides their results: progress on a terminal. Progress is drawn on
//! standard error, and only when it is a terminal, so that pipes and logs stay plain.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner counting `unit` (`entries`, `clusters`) with its rate, after `message`.
pub fn spinner(message: impl Into<String>, unit: &str) -> ProgressBar {
    styled(
        ProgressBar::new_spinner(),
        message,
        &format!("{{spinner}} {{msg}}: {{pos}} {unit} ({{per_sec}})"),
    )
}

/// A bar of `total` steps in `unit` (0 when the total is not known yet; set it later with
/// `set_length`), with the time left.
pub fn bar(message: impl Into<String>, total: u64, unit: &str) -> ProgressBar {
    styled(
        ProgressBar::new(total),
        message,
        &format!("{{msg}}: {{bar:40}} {{pos}}/{{len}} {unit} ({{eta}})"),
    )
}

fn styled(bar: ProgressBar, message: impl Into<String>, template: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.with_style(style).with_message(message.into())
}

/// Runs `work` with a progress callback counting log entries under `message`.
pub fn with_progress<T>(message: &'static str, work: impl FnOnce(&dyn Fn(u64)) -> T) -> T {
    let bar = spinner(message, "entries");
    let result = work(&|done| bar.set_position(done));
    bar.finish_and_clear();
    result
}
