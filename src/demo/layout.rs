//! The shared page layout.

use axum::response::Html;

use crate::text;

const STYLE: &str = "\
body{margin:0;font-family:system-ui,sans-serif;color:#1f2a1c;background:#f7f5ee}\
header{background:#3d6b35;color:#fff;padding:.8rem 1.5rem;display:flex;gap:2rem;align-items:baseline}\
header a{color:#fff;text-decoration:none}\
.brand{font-weight:700;font-size:1.2rem}\
nav a{margin-right:1rem}\
main{max-width:46rem;margin:1.5rem auto;padding:0 1rem}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #d8d3c0}\
label{display:block;margin:.7rem 0 .2rem}\
input,select{font:inherit;padding:.3rem}\
button{font:inherit;margin-top:1rem;padding:.4rem 1.2rem;background:#3d6b35;color:#fff;border:0;border-radius:3px}\
.error{color:#a12b1d;font-weight:600}\
.note,.updated{color:#5c6356;font-size:.9rem}\
.test-order{background:#fff3bf;padding:.5rem}\
footer{max-width:46rem;margin:2rem auto;padding:0 1rem;color:#8a8f84;font-size:.8rem}";

/// Wraps `body` (already-escaped HTML) in the site's header, nav and footer.
pub(super) fn page(title: &str, body: &str) -> Html<String> {
    let title = text::EscapeHtml(title);
    Html(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>{title} · Greenfield Farmers' Union</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
<header><a class=\"brand\" href=\"/\">Greenfield Farmers' Union</a>\n\
<nav><a href=\"/weather\">Weather</a><a href=\"/members\">Members</a><a href=\"/diesel/order\">Diesel order</a></nav></header>\n\
<main>\n{body}\n</main>\n\
<footer>This is scarecrow's built-in demo site. Nothing here is real.</footer>\n</body>\n</html>\n"
    ))
}
