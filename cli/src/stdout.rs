//! Standard output for reports. `print!` panics when the reader has gone
//! (`gatefold explain SPEC | head`); a CLI should stop quietly instead, as
//! other Unix tools do when their pipe closes.

use std::io::{ErrorKind, Write};

/// Writes `text` to stdout. A closed pipe ends the process with exit 0
/// (the reader asked for no more); any other write error is an internal
/// error (exit 3), said on stderr.
pub fn write(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(3);
    }
}

/// `print!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}

/// `println!` through [`write`].
macro_rules! outln {
    () => { $crate::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
