//! `cargo xtask`: generates the customization export and the function docs.

fn main() {
    println!("xtask (being written)");
}
