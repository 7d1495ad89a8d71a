use super::*;

fn declared() -> Event {
    let [d, _] = test_events("shop", Roles::default(), Utc::now());
    d
}

#[test]
fn values_are_inserted_as_json() {
    let mut e = declared();
    e.incident.title = "a \"quoted\"\nline\\ and </script>".to_owned();
    let t =
        BodyTemplate::compile(r#"{"t": {{ incident.title }}, "n": {{ incident.note }}}"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&t.render(&e).unwrap()).unwrap();
    assert_eq!(v["t"], e.incident.title.as_str());
    assert!(v["n"].is_null());
}

#[test]
fn quoting_a_value_is_caught_with_a_hint() {
    let p = BodyTemplate::check(r#"{"t": "{{ incident.title }}"}"#).unwrap_err();
    assert!(p.message.contains("the body is not JSON"), "{p:?}");
    assert!(p.help.unwrap().contains("without quotes"));
}

#[test]
fn syntax_errors_and_unknown_names_have_a_position() {
    let p = BodyTemplate::check("{\n  \"t\": {{ incident.title }\n}").unwrap_err();
    assert!(p.message.starts_with("template: syntax error"), "{p:?}");
    assert!(p.range.is_some());
    let p = BodyTemplate::check(r#"{"t": {{ incident.titel }}}"#).unwrap_err();
    assert!(p.message.contains("undefined"), "{p:?}");
    assert_eq!(p.range, Some(9..23));
}

#[test]
fn header_values_cannot_name_secrets_or_break_lines() {
    let t = HeaderTemplate::compile("k={{ incident.title }}; ${secret:TOKEN}").unwrap();
    let mut e = declared();
    e.incident.title = "x\r\ny ${secret:OTHER}".to_owned();
    let secrets = Resolved {
        secrets: [("TOKEN".to_owned(), "t0k".to_owned())].into(),
        ..Resolved::default()
    };
    let v = t.render(&e, &secrets).unwrap();
    assert_eq!(v.to_str().unwrap(), "k=x  y ${secret:OTHER}; t0k");
}

#[test]
fn text_helpers() {
    assert_eq!(truncate("abcdef", 4), "abc…");
    assert_eq!(truncate("abcd", 4), "abcd");
    assert_eq!(truncate("ääää", 3), "ää…");
    assert_eq!(instance_group(&declared().incident), Some("shop"));
}
