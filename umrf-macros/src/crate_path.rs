//! `#[umrf(crate = ...)]`: where the generated code finds umrf, for crates that re-export it.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Attribute, LitStr, Path};

const USAGE: &str = "the `umrf` attribute takes one key, `crate`, naming where umrf is for a crate that re-exports it: `#[umrf(crate = my_crate::umrf)]` or `#[umrf(crate = \"my_crate::umrf\")]`";

/// The path to umrf: `::umrf`, or the one `#[umrf(crate = ...)]` names (as a path or a string).
pub(crate) fn umrf_path(attrs: &[Attribute]) -> syn::Result<TokenStream> {
    let mut found: Option<Path> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("umrf")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("crate") {
                return Err(meta.error(format!("unknown key: {USAGE}")));
            }
            if found.is_some() {
                return Err(meta.error("`crate` is given twice: name umrf's path once"));
            }
            let value = meta.value()?;
            found = Some(if value.peek(LitStr) {
                value.parse::<LitStr>()?.parse()?
            } else {
                value.parse()?
            });
            Ok(())
        })?;
    }
    Ok(found.map_or_else(|| quote!(::umrf), |path| quote!(#path)))
}
