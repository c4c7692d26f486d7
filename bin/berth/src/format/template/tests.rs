//! Template behaviour, table-driven against what Go's text/template prints.

use super::*;

fn run(source: &str, data: &str) -> Result<String, TemplateError> {
    let value = Value::parse(data.as_bytes()).expect("test data is JSON");
    Template::parse(source)?.execute(&value)
}

#[test]
fn templates_print_like_go_text_template() {
    let data = r#"{"ID":"abc123","Names":["web","db"],"State":{"Status":"running","Pid":42},
        "Labels":{"b":"2","a":"1"},"Empty":"","Count":3,"Ratio":0.5,"Up":true,"None":null}"#;
    let cases = [
        ("{{.ID}}", "abc123"),
        ("{{.State.Status}}/{{.State.Pid}}", "running/42"),
        ("{{json .State}}", r#"{"Status":"running","Pid":42}"#),
        ("{{join .Names \",\"}}", "web,db"),
        ("{{range .Names}}[{{.}}]{{end}}", "[web][db]"),
        (
            "{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}",
            "0=web 1=db ",
        ),
        (
            "{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}",
            "a=1;b=2;",
        ),
        ("{{if .Up}}up{{else}}down{{end}}", "up"),
        (
            "{{if .Empty}}x{{else if .Count}}count{{else}}none{{end}}",
            "count",
        ),
        ("{{with .State}}{{.Pid}}{{end}}", "42"),
        ("{{with .Empty}}x{{else}}empty{{end}}", "empty"),
        (
            "{{printf \"%-8s|%5d|%.2f\" .ID .Count .Ratio}}",
            "abc123  |    3|0.50",
        ),
        ("{{index .Names 1}} {{index .Labels \"a\"}}", "db 1"),
        (
            "{{upper .ID}} {{lower \"ABC\"}} {{title \"hello world\"}}",
            "ABC123 abc Hello World",
        ),
        ("{{len .Names}} {{len .ID}}", "2 6"),
        ("{{truncate .ID 3}}|{{pad .ID 1 2}}|", "abc| abc123  |"),
        ("{{.ID | upper}}", "ABC123"),
        ("{{println .ID}}", "abc123\n"),
        ("{{.Labels}}", "map[a:1 b:2]"),
        ("{{.Names}}", "[web db]"),
        ("{{.Missing}} {{.None}}", "<nil> <nil>"),
        ("{{$x := .State.Pid}}pid {{$x}}", "pid 42"),
        (
            "{{if eq .State.Status \"running\" \"paused\"}}yes{{end}}",
            "yes",
        ),
        ("{{if and .Up (gt .Count 2)}}big{{end}}", "big"),
        ("{{if not .Empty}}blank{{end}}", "blank"),
        ("a  {{- .ID -}}  b", "aabc123b"),
        ("{{/* comment */}}x", "x"),
        ("{{(index .Names 0) | upper}}", "WEB"),
        ("{{split \"a:b\" \":\"}}", "[a b]"),
        ("{{json .Names}}", r#"["web","db"]"#),
        ("{{.Ratio}} {{.Up}}", "0.5 true"),
        ("{{range .None}}x{{else}}no items{{end}}", "no items"),
    ];
    for (source, expected) in cases {
        assert_eq!(run(source, data).as_deref(), Ok(expected), "{source}");
    }
}

#[test]
fn parse_errors_are_reported() {
    for source in [
        "{{.ID",
        "{{if .X}}a",
        "{{end}}",
        "{{nosuchfunc .X}}",
        "{{.ID \"x\"}}",
    ] {
        assert!(run(source, "{}").is_err(), "{source}");
    }
}

#[test]
fn strict_templates_refuse_unknown_fields() {
    let value = Value::parse(br#"{"ID":"x"}"#).expect("json");
    let template = Template::parse("{{.Nope}}").expect("parse").strict();
    assert!(template.execute(&value).is_err());
}
