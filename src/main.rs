//! `fold-ml`: prove deep-network inference with Nova folding, resume jobs, verify, and
//! commit to models. Exit codes: 0 success, 1 failure or rejection, 2 usage or input error.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
