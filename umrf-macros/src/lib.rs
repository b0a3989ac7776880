//! Derive macros for [`umrf`](https://docs.rs/umrf). Use them through the re-exports
//! `umrf::Message` and `umrf::Residency`; their documentation lives there.
//!
//! Each derive lives in its own file and reports misuse as a `syn::Error` pointing at the
//! offending item. Generated code states its requirements as where-bounds for the compiler to
//! check, so a derive never vouches for a type on the strength of its own reading of the tokens.

mod crate_path;
mod message;
mod residency;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Implements `umrf::Transferable` for a struct or enum whose every field is `Transferable`.
///
/// A field that is not — `Rc`, `Arc<Mutex<_>>`, a reference, a raw pointer, a `SharedBuffer` —
/// makes compilation fail with an error at that field. Recursive types derive too; a field that
/// reaches the message only through another message type (mutual recursion) is marked
/// `#[umrf(recursive)]`. A crate that re-exports umrf names its path with
/// `#[umrf(crate = path::to::umrf)]`.
#[proc_macro_derive(Message, attributes(umrf))]
pub fn derive_message(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    message::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Declares a user-defined residency marker that reuses a built-in placement strategy:
/// `#[residency(like = Hugepage, name = "staging")]` on a unit struct. A crate that re-exports
/// umrf names its path with `#[umrf(crate = path::to::umrf)]`.
#[proc_macro_derive(Residency, attributes(residency, umrf))]
pub fn derive_residency(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    residency::derive(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
