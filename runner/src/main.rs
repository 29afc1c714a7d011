//! `soar-runner`: serves SOAR functions over STOMP like resilient-circuits.

mod plugins;

fn main() {
    println!("soar-runner (being written)");
}
