// `sqlx::migrate!` embeds the migrations when the crate compiles, but cargo cannot see that it reads
// them: without this, a migration added to an already built crate would be missing from its binary.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
