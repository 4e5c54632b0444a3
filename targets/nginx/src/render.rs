//! The templates and the escaping helpers they must use for user strings.
//!
//! The templates hold the file's structure; the directives inside `http {}`
//! arrive as text made line by line by [`crate::model`] with the very
//! functions the helpers call ([`crate::model::Word::render`], built on
//! [`escape`]). A template loop over them was tried first: handlebars
//! copies its data as it walks it and took 20 s for 10,000 routes.

use crate::escape;
use crate::model::{Model, Word};
use crate::Mode;
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use std::sync::OnceLock;

const NGINX_CONF: &str = include_str!("../templates/nginx.conf.hbs");
const HTTP_CONF: &str = include_str!("../templates/http.conf.hbs");

/// One string helper: `{{NAME x}}` writes `f(x)`.
fn string_helper(
    f: fn(&str) -> String,
) -> impl Fn(&Helper, &Handlebars, &Context, &mut RenderContext, &mut dyn Output) -> HelperResult
       + Send
       + Sync {
    move |h, _, _, _, out| {
        let text = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("string", 0))?;
        out.write(&f(text))?;
        Ok(())
    }
}

/// `{{word w}}`: one directive word, quoted by what it holds.
fn word_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let value = h
        .param(0)
        .map(|p| p.value().clone())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("word", 0))?;
    let word: Word = serde_json::from_value(value)
        .map_err(|e| RenderErrorReason::Other(format!("not a word: {e}")))?;
    out.write(&word.render())?;
    Ok(())
}

/// A comment stays on its line whatever it holds.
pub fn comment(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn registry() -> &'static Handlebars<'static> {
    static REGISTRY: OnceLock<Handlebars<'static>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        // Never HTML: a bare `{{x}}` is a safe nginx token or a quoted literal.
        hb.register_escape_fn(escape::token);
        hb.register_helper("lit", Box::new(string_helper(escape::literal)));
        hb.register_helper("val", Box::new(string_helper(escape::value)));
        hb.register_helper(
            "re",
            Box::new(string_helper(|s| escape::literal(&escape::regex(s)))),
        );
        hb.register_helper("cmt", Box::new(string_helper(comment)));
        hb.register_helper("word", Box::new(word_helper));
        for (name, text) in [("nginx.conf", NGINX_CONF), ("http.conf", HTTP_CONF)] {
            hb.register_template_string(name, text)
                .unwrap_or_else(|e| panic!("template {name}: {e}"));
        }
        hb
    })
}

/// The entry file's text.
pub fn render(model: &Model, mode: Mode) -> String {
    let name = match mode {
        Mode::Full => "nginx.conf",
        Mode::HttpOnly => "http.conf",
    };
    registry()
        .render(name, model)
        .unwrap_or_else(|e| panic!("rendering {name}: {e}"))
}
