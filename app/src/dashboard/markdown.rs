//! A small, safe Markdown renderer for text panels. Dashboard JSON comes from anyone (imports,
//! share links), so everything is HTML-escaped first and only this module's own tags are
//! emitted: raw HTML in the source shows as text, and links must be http(s), mailto or
//! site-relative — a `javascript:` URL never becomes a link.

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn safe_href(url: &str) -> bool {
    let u = url.trim().to_ascii_lowercase();
    u.starts_with("http://")
        || u.starts_with("https://")
        || u.starts_with("mailto:")
        || (u.starts_with('/') && !u.starts_with("//"))
}

/// Inline markup: `code`, **bold**, *italic*, [text](url). Input is raw; output is safe HTML.
fn inline(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('`') {
            if let Some(end) = after.find('`') {
                out.push_str(&format!("<code>{}</code>", escape(&after[..end])));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix("**") {
            if let Some(end) = after.find("**") {
                out.push_str(&format!("<strong>{}</strong>", inline(&after[..end])));
                rest = &after[end + 2..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('*') {
            if let Some(end) = after.find('*').filter(|&e| e > 0) {
                out.push_str(&format!("<em>{}</em>", inline(&after[..end])));
                rest = &after[end + 1..];
                continue;
            }
        }
        if let Some(after) = rest.strip_prefix('[') {
            if let Some(close) = after.find("](") {
                if let Some(end) = after[close + 2..].find(')') {
                    let text = &after[..close];
                    let url = &after[close + 2..close + 2 + end];
                    if safe_href(url) {
                        out.push_str(&format!(
                            "<a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a>",
                            escape(url.trim()),
                            inline(text)
                        ));
                    } else {
                        out.push_str(&inline(text));
                    }
                    rest = &after[close + 2 + end + 1..];
                    continue;
                }
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Renders Markdown (headings, paragraphs, lists, code blocks, inline markup) to safe HTML.
pub fn render(src: &str) -> String {
    let mut html = String::new();
    let mut para: Vec<&str> = Vec::new();
    let mut list: Vec<String> = Vec::new();
    let mut code: Option<Vec<&str>> = None;
    let flush = |html: &mut String, para: &mut Vec<&str>, list: &mut Vec<String>| {
        if !para.is_empty() {
            html.push_str(&format!("<p>{}</p>", inline(&para.join(" "))));
            para.clear();
        }
        if !list.is_empty() {
            html.push_str("<ul>");
            for item in list.drain(..) {
                html.push_str(&format!("<li>{item}</li>"));
            }
            html.push_str("</ul>");
        }
    };
    for line in src.lines() {
        if let Some(block) = code.as_mut() {
            if line.trim_start().starts_with("```") {
                html.push_str(&format!("<pre><code>{}</code></pre>", escape(&block.join("\n"))));
                code = None;
            } else {
                block.push(line);
            }
            continue;
        }
        let t = line.trim();
        if t.starts_with("```") {
            flush(&mut html, &mut para, &mut list);
            code = Some(Vec::new());
        } else if t.is_empty() {
            flush(&mut html, &mut para, &mut list);
        } else if let Some(level) = (1..=6).rev().find(|&n| t.starts_with(&format!("{} ", "#".repeat(n)))) {
            flush(&mut html, &mut para, &mut list);
            html.push_str(&format!("<h{level}>{}</h{level}>", inline(t[level + 1..].trim())));
        } else if let Some(item) = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")) {
            if !para.is_empty() {
                flush(&mut html, &mut para, &mut Vec::new());
            }
            list.push(inline(item));
        } else {
            if !list.is_empty() {
                flush(&mut html, &mut Vec::new(), &mut list);
            }
            para.push(t);
        }
    }
    if let Some(block) = code {
        html.push_str(&format!("<pre><code>{}</code></pre>", escape(&block.join("\n"))));
    }
    flush(&mut html, &mut para, &mut list);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup() {
        assert_eq!(
            render("# Title\n\nSome **bold** and *it* `x<y`"),
            "<h1>Title</h1><p>Some <strong>bold</strong> and <em>it</em> <code>x&lt;y</code></p>"
        );
        assert_eq!(render("- a\n- b\n\ntext"), "<ul><li>a</li><li>b</li></ul><p>text</p>");
        assert_eq!(render("```\n<b>\n```"), "<pre><code>&lt;b&gt;</code></pre>");
        assert_eq!(
            render("[docs](https://example.com/a?b=1&c=2)"),
            "<p><a href=\"https://example.com/a?b=1&amp;c=2\" rel=\"noopener noreferrer\" target=\"_blank\">docs</a></p>"
        );
    }

    #[test]
    fn hostile_input_stays_text() {
        let out = render("<script>alert(1)</script>\n<img src=x onerror=alert(1)>");
        assert!(!out.contains("<script") && !out.contains("<img"), "{out}");
        assert!(out.contains("&lt;script&gt;"));
        let out = render("[click](javascript:alert(1)) [x](//evil.example) [y](\" onmouseover=\"alert(1))");
        assert!(!out.contains("href"), "{out}");
        let out = render("[ok](https://a.example/\"onmouseover=\"x)");
        assert!(out.contains("&quot;onmouseover=&quot;"), "{out}");
    }
}
