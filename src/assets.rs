//! Templates and static files, embedded in the binary so `hubbub` runs from any directory.
//!
//! Debug builds read them from disk instead (rust-embed's default), so editing a template or a
//! script needs no rebuild during development.

use anyhow::Context;
use rust_embed::{EmbeddedFile, RustEmbed};
use tera::Tera;

#[derive(RustEmbed)]
#[folder = "templates/"]
struct Templates;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Static;

/// Loads every template; Tera escapes HTML in every `.html` template by default.
pub fn templates() -> anyhow::Result<Tera> {
    let mut tera = Tera::default();
    let mut sources = Vec::new();
    for name in Templates::iter() {
        let file = Templates::get(&name).with_context(|| format!("template {name} vanished"))?;
        let source = String::from_utf8(file.data.into_owned())
            .with_context(|| format!("template {name} is not UTF-8"))?;
        sources.push((name.into_owned(), source));
    }
    tera.add_raw_templates(sources)
        .context("a template does not parse")?;
    Ok(tera)
}

/// A static file by its path under static/.
pub fn static_file(path: &str) -> Option<EmbeddedFile> {
    Static::get(path)
}
