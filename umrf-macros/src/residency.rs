//! `#[derive(Residency)]`: a user-defined residency marker with a built-in strategy.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitStr, Type};

/// The names of umrf's built-in markers, which a custom marker may not take.
const BUILTIN_NAMES: [&str; 5] = ["CpuLocal", "NumaNode", "Cxl", "GpuPinned", "Hugepage"];

const USAGE: &str = "#[derive(Residency)] needs `#[residency(like = <built-in residency>, name = \"<name>\")]`, for example `#[residency(like = Hugepage, name = \"staging\")]`";

pub(crate) fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    match &input.data {
        Data::Struct(data) if matches!(data.fields, Fields::Unit) => {}
        Data::Struct(data) if data.fields.is_empty() => {}
        Data::Struct(data) => {
            return Err(syn::Error::new(
                data.fields.span(),
                format!(
                    "a residency marker carries no data: declare `{}` as a unit struct (`struct {};`)",
                    input.ident, input.ident
                ),
            ));
        }
        _ => {
            return Err(syn::Error::new(
                input.ident.span(),
                "#[derive(Residency)] applies to a unit struct, such as `struct Staging;`",
            ));
        }
    }
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "a residency marker is a plain unit struct: remove the generic parameters",
        ));
    }

    let mut like: Option<Type> = None;
    let mut name: Option<LitStr> = None;
    for attr in input
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("residency"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("like") {
                like = Some(meta.value()?.parse()?);
                Ok(())
            } else if meta.path.is_ident("name") {
                let value: LitStr = meta.value()?.parse()?;
                if value.value().is_empty() {
                    return Err(syn::Error::new(
                        value.span(),
                        "the residency name must not be empty",
                    ));
                }
                if BUILTIN_NAMES.contains(&value.value().as_str()) {
                    return Err(syn::Error::new(
                        value.span(),
                        format!(
                            "`{}` is the name of a built-in residency: give this marker its own name (errors, metrics and logs name residencies by it)",
                            value.value()
                        ),
                    ));
                }
                name = Some(value);
                Ok(())
            } else {
                Err(meta.error(format!("unknown key: {USAGE}")))
            }
        })?;
    }
    let like = like.ok_or_else(|| syn::Error::new(input.ident.span(), USAGE))?;
    let umrf = crate::crate_path::umrf_path(&input.attrs)?;
    let ident = &input.ident;
    let name = name.unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    Ok(quote! {
        impl #umrf::residency::Residency for #ident {
            const NAME: &'static str = #name;
            const STRATEGY: #umrf::residency::Strategy =
                <#like as #umrf::residency::Residency>::STRATEGY;
        }
    })
}
