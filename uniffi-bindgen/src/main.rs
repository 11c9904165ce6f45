//! `cargo run -p uniffi-bindgen -- generate --library target/debug/libcrm_mobile.so --language kotlin --out-dir generated/kotlin`

fn main() {
    uniffi::uniffi_bindgen_main()
}
