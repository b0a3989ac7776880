//! `#[derive(Message)]`: `Transferable` for a type whose every field is `Transferable`.

use proc_macro2::{Ident, TokenStream, TokenTree};
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
    let type_params: Vec<&Ident> = input.generics.type_params().map(|p| &p.ident).collect();
    // A field whose type depends on the type parameters becomes a where-bound of the impl, so
    // the impl holds exactly when the field is Transferable. Every other field — plain types,
    // and types that mention the message itself, which as bounds would make the compiler prove
    // the impl from itself (E0275) — is checked in a function under the impl's bounds: the
    // compiler proves each such field Transferable, given the impl, or refuses to compile.
    let mut bounds = Vec::with_capacity(fields.len());
    let mut checks = Vec::new();
    for (position, field) in fields.iter().enumerate() {
        reject_borrowed(input, field, position)?;
        let ty = &field.ty;
        let tokens = quote!(#ty);
        let recursive = mentions(&tokens, &|i| i == name || i == "Self");
        if !recursive && mentions(&tokens, &|i| type_params.contains(&i)) {
            // The bound carries the field's span, so an unmet bound is reported at the field.
            bounds.push(quote_spanned! {field.span()=> #ty: #umrf::Transferable });
        } else {
            checks.push(quote_spanned! {field.span()=> __umrf_field_is_transferable::<#ty>(); });
        }
    }

    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut predicates: Vec<TokenStream> = where_clause
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    predicates.extend(bounds);
    Ok(quote! {
        // SAFETY: every field is `Transferable`, which the compiler checks: fields that depend
        // on the type parameters through the where-clause, the others in the function below,
        // under the same bounds. So this type owns nothing that shares mutable state.
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
