//! `#[derive(Message)]`: `Transferable` for a type whose every field is `Transferable`.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Field, Type};

pub(crate) fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
    let umrf = crate::crate_path::umrf_path(&input.attrs)?;
    let fields: Vec<&Field> = match &input.data {
        Data::Struct(data) => data.fields.iter().collect(),
        Data::Enum(data) => data.variants.iter().flat_map(|v| v.fields.iter()).collect(),
        Data::Union(data) => {
            return Err(syn::Error::new(
                data.union_token.span(),
                "#[derive(Message)] does not support unions: a union's active field is unknown, so what it owns cannot be checked; use an enum",
            ));
        }
    };

    let name = &input.ident;
    // Most fields become where-bounds of the impl, so the impl holds exactly when each field is
    // Transferable, and an unmet bound is reported at its field. A field that reaches the
    // message itself (its type names the message, or `Self`, or the field is marked
    // `#[umrf(recursive)]`, for types that reach each other) would make the compiler prove the
    // impl from itself (E0275); it is checked instead in a function under the impl's bounds,
    // where the compiler proves it Transferable, given the impl, or refuses to compile.
    let mut bounds = Vec::with_capacity(fields.len());
    let mut checks = Vec::new();
    for (position, field) in fields.iter().enumerate() {
        reject_borrowed(input, field, position)?;
        let ty = &field.ty;
        let recursive =
            marked_recursive(field)? || mentions(&quote!(#ty), &|i| i == name || i == "Self");
        if recursive {
            checks.push(quote_spanned! {field.span()=> __umrf_field_is_transferable::<#ty>(); });
        } else {
            // The bound carries the field's span, so an unmet bound is reported at the field.
            let trait_path = respanned(&quote!(#umrf::Transferable), field.span());
            bounds.push(quote_spanned! {field.span()=> #ty: #trait_path });
        }
    }

    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    predicates.extend(bounds);
    Ok(quote! {
        // SAFETY: every field is `Transferable`, which the compiler checks: most through the
        // where-clause, the recursive ones in the function below, under the same bounds. So
        // this type owns nothing that shares mutable state.
        unsafe impl #impl_generics #umrf::Transferable for #name #ty_generics
        where
            #(#predicates,)*
        {}

        const _: () = {
            fn __umrf_field_is_transferable<T: ?Sized + #umrf::Transferable>() {}

            impl #impl_generics #name #ty_generics
            where
                #(#predicates,)*
            {
                #[allow(dead_code)]
                fn __umrf_check_fields() {
                    #(#checks)*
                }
            }
        };
    })
}

/// Whether the field carries `#[umrf(recursive)]`.
fn marked_recursive(field: &Field) -> syn::Result<bool> {
    let mut recursive = false;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("umrf")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("recursive") {
                recursive = true;
                Ok(())
            } else {
                Err(meta.error(
                    "unknown key: on a field, the `umrf` attribute takes `recursive`, for a field whose type reaches this message through another message type",
                ))
            }
        })?;
    }
    Ok(recursive)
}

/// `tokens` with every token given `span`.
fn respanned(tokens: &TokenStream, span: Span) -> TokenStream {
    tokens
        .clone()
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut inner = Group::new(group.delimiter(), respanned(&group.stream(), span));
                inner.set_span(span);
                tree = TokenTree::Group(inner);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// Whether any identifier in `tokens` (searching into groups) satisfies `is`.
fn mentions(tokens: &TokenStream, is: &dyn Fn(&Ident) -> bool) -> bool {
    tokens.clone().into_iter().any(|tree| match tree {
        TokenTree::Ident(ident) => is(&ident),
        TokenTree::Group(group) => mentions(&group.stream(), is),
        TokenTree::Punct(_) | TokenTree::Literal(_) => false,
    })
}

/// References and raw pointers are never `Transferable`; say so plainly, naming the field.
fn reject_borrowed(input: &DeriveInput, field: &Field, position: usize) -> syn::Result<()> {
    let what = match strip_groups(&field.ty) {
        Type::Reference(_) => "a reference: a message must own its data, not borrow it",
        Type::Ptr(_) => "a raw pointer: it could reach memory another thread owns",
        _ => return Ok(()),
    };
    let field_name = field
        .ident
        .as_ref()
        .map_or_else(|| position.to_string(), ToString::to_string);
    Err(syn::Error::new(
        field.span(),
        format!(
            "field `{field_name}` of message `{}` is {what}; send an owned value or a `umrf::Capability` instead",
            input.ident
        ),
    ))
}

fn strip_groups(ty: &Type) -> &Type {
    match ty {
        Type::Group(group) => strip_groups(&group.elem),
        Type::Paren(paren) => strip_groups(&paren.elem),
        other => other,
    }
}
