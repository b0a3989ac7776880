//! `#[derive(Message)]`: `Transferable` for a type whose every field is `Transferable`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Field, Type};

pub(crate) fn derive(input: &DeriveInput) -> syn::Result<TokenStream> {
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

    let mut bounds = Vec::with_capacity(fields.len());
    for (position, field) in fields.iter().enumerate() {
        reject_borrowed(input, field, position)?;
        let ty = &field.ty;
        // The bound carries the field's span, so an unmet bound is reported at the field.
        bounds.push(quote_spanned! {field.span()=> #ty: ::umrf::Transferable });
    }

    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    predicates.extend(bounds);
    Ok(quote! {
        // SAFETY: the where-clause requires every field to be `Transferable`; the compiler
        // checks it, so this type owns nothing that shares mutable state.
        unsafe impl #impl_generics ::umrf::Transferable for #name #ty_generics
        where
            #(#predicates,)*
        {}
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
