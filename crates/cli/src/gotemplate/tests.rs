//! The template language end to end: parse, run, print, fail.

use serde_json::{json, Value};

use super::{Options, Template};

/// Part of what `docker inspect` prints for a running container on the default bridge.
fn container() -> Value {
    json!({
        "Id": "4c2b7a0e9f1d5b3a8c6e2d0f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b",
        "Created": "2024-05-01T10:00:00.123456789Z",
        "Path": "nginx",
        "Args": ["-g", "daemon off;"],
        "State": {
            "Status": "running",
            "Running": true,
            "Paused": false,
            "Pid": 4242,
            "ExitCode": 0,
            "Health": null,
            "StartedAt": "2024-05-01T10:00:01Z"
        },
        "Name": "/web",
        "RestartCount": 0,
        "HostConfig": {
            "NetworkMode": "bridge",
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "Memory": 0,
            "NanoCpus": 1500000000,
            "Dns": []
        },
        "Config": {
            "Hostname": "4c2b7a0e9f1d",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.25.5"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "Image": "nginx:latest",
            "Labels": {"com.example": "yes", "maintainer": "NGINX Docker Maintainers"},
            "ExposedPorts": {"80/tcp": {}}
        },
        "NetworkSettings": {
            "IPAddress": "172.17.0.2",
            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
            "Networks": {
                "bridge": {
                    "IPAddress": "172.17.0.2",
                    "Gateway": "172.17.0.1",
                    "IPPrefixLen": 16,
                    "MacAddress": "02:42:ac:11:00:02",
                    "Aliases": null
                }
            }
        },
        "Mounts": [
            {"Type": "volume", "Name": "data", "Source": "/var/lib/coracle/volumes/data/_data", "Destination": "/data", "RW": true}
        ]
    })
}

fn run(template: &str, data: &Value) -> String {
    Template::parse("", template)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
        .execute(data)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn parse_error(template: &str) -> String {
    Template::parse("", template).unwrap_err().to_string()
}

fn exec_error(template: &str, data: &Value) -> String {
    Template::parse("", template)
        .unwrap()
        .execute(data)
        .unwrap_err()
        .to_string()
}

#[test]
fn docker_inspect_examples() {
    let c = container();
    assert_eq!(
        run(
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &c
        ),
        "172.17.0.2"
    );
    assert_eq!(
        run(
            r#"{{.State.Running}} {{index .Config.Labels "com.example"}}"#,
            &c
        ),
        "true yes"
    );
    assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}", &c), "up");
    assert_eq!(run("{{with .State}}{{.Pid}}{{end}}", &c), "4242");
    assert_eq!(
        run(r#"{{join .Config.Cmd " "}}"#, &c),
        "nginx -g daemon off;"
    );
    assert_eq!(
        run(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            &c
        ),
        "com.example=yes;maintainer=NGINX Docker Maintainers;"
    );
    assert_eq!(run("{{.NetworkSettings.IPAddress}}", &c), "172.17.0.2");
    assert_eq!(
        run(
            r#"{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} -> {{(index $conf 0).HostPort}}{{end}}"#,
            &c
        ),
        "80/tcp -> 8080"
    );
    assert_eq!(
        run("{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}", &c),
        "data:/data "
    );
    assert_eq!(
        run("{{json .Config.Labels}}", &c),
        r#"{"com.example":"yes","maintainer":"NGINX Docker Maintainers"}"#
    );
    assert_eq!(run("{{.Name | printf \"%s!\"}}", &c), "/web!");
}

#[test]
fn missing_keys_and_null_print_no_value() {
    let c = container();
    assert_eq!(run("{{.HostConfig.Init}}", &c), "<no value>");
    assert_eq!(run("{{.Nope.Deeper.Still}}", &c), "<no value>");
    assert_eq!(run("{{.State.Health}}", &c), "<no value>");
    assert_eq!(
        run(r#"{{index .Config.Labels "absent"}}"#, &c),
        "<no value>"
    );
    // Inside a composite value a null is Go's <nil>.
    assert_eq!(
        run(
            "{{.NetworkSettings.Networks.bridge.Aliases}}|{{print .Nope}}",
            &c
        ),
        "<no value>|<nil>"
    );
    assert_eq!(run("{{json .Nope}}", &c), "null");
}

#[test]
fn values_print_like_go() {
    let c = container();
    assert_eq!(run("{{.Config.Cmd}}", &c), "[nginx -g daemon off;]");
    assert_eq!(
        run("{{.HostConfig.PortBindings}}", &c),
        "map[80/tcp:[map[HostIp: HostPort:8080]]]"
    );
    assert_eq!(
        run("{{.HostConfig.Dns}} {{.Config.ExposedPorts}}", &c),
        "[] map[80/tcp:map[]]"
    );
    assert_eq!(
        run("{{.HostConfig.NanoCpus}} {{.State.Paused}}", &c),
        "1500000000 false"
    );
    assert_eq!(run("{{.X}}", &json!({"X": 1.5})), "1.5");
    assert_eq!(run("{{.X}}", &json!({"X": 2.0})), "2");
    assert_eq!(run("{{.X}}", &json!({"X": 1e7})), "1e+07");
    assert_eq!(run("{{.}}", &json!({"b": 1, "a": "x"})), "map[a:x b:1]");
}

#[test]
fn literals_and_parentheses() {
    let v = json!({});
    assert_eq!(
        run(
            r#"{{"a\tb"}}|{{`raw\n`}}|{{'a'}}|{{42}}|{{-1.5}}|{{0x10}}|{{true}}"#,
            &v
        ),
        "a\tb|raw\\n|97|42|-1.5|16|true"
    );
    assert_eq!(
        run(
            r#"{{printf "%d-%s" (len (split "a,b,c" ",")) (upper "x")}}"#,
            &v
        ),
        "3-X"
    );
    assert_eq!(run(r#"{{(index (split "a:b" ":") 1)}}"#, &v), "b");
    assert_eq!(run("{{/* a comment */}}x", &v), "x");
}

#[test]
fn trim_markers() {
    let v = json!({"A": "a", "B": "b"});
    assert_eq!(run("{{.A}}  \n  {{- .B}}", &v), "ab");
    assert_eq!(run("{{.A -}}  \n  {{.B}}", &v), "ab");
    assert_eq!(run("[ {{- .A -}} ]", &v), "[a]");
    assert_eq!(
        run("{{range .L -}}\n  {{.}}\n{{- end}}", &json!({"L": [1, 2]})),
        "12"
    );
}

#[test]
fn variables() {
    let c = container();
    assert_eq!(run("{{$x := .State.Pid}}pid={{$x}}", &c), "pid=4242");
    assert_eq!(run("{{$x := 1}}{{$x = 2}}{{$x}}", &c), "2");
    assert_eq!(
        run("{{with .State}}{{$.Name}} {{.Status}}{{end}}", &c),
        "/web running"
    );
    assert_eq!(
        run(
            "{{$n := .NetworkSettings}}{{$n.Networks.bridge.Gateway}}",
            &c
        ),
        "172.17.0.1"
    );
    assert_eq!(
        run("{{range $i, $a := .Args}}{{$i}}:{{$a}} {{end}}", &c),
        "0:-g 1:daemon off; "
    );
    assert_eq!(
        run("{{range $a := .Args}}<{{$a}}>{{end}}", &c),
        "<-g><daemon off;>"
    );
    // An assignment inside a range changes the outer variable.
    assert_eq!(
        run(
            "{{$last := \"\"}}{{range .Args}}{{$last = .}}{{end}}{{$last}}",
            &c
        ),
        "daemon off;"
    );
}

#[test]
fn conditionals() {
    let c = container();
    let t = "{{if eq .State.Status \"exited\"}}E{{else if .State.Paused}}P{{else if .State.Running}}R{{else}}?{{end}}";
    assert_eq!(run(t, &c), "R");
    assert_eq!(
        run("{{if and .State.Running (not .State.Paused)}}ok{{end}}", &c),
        "ok"
    );
    assert_eq!(
        run(
            "{{if or .State.Paused .HostConfig.Memory}}x{{else}}none{{end}}",
            &c
        ),
        "none"
    );
    assert_eq!(
        run("{{or .HostConfig.Memory \"unlimited\"}}", &c),
        "unlimited"
    );
    assert_eq!(run("{{and 1 0 2}}|{{and 1 2}}|{{or 0 \"\"}}", &c), "0|2|");
    assert_eq!(
        run(
            "{{with .State.Health}}{{.Status}}{{else}}no healthcheck{{end}}",
            &c
        ),
        "no healthcheck"
    );
    assert_eq!(
        run("{{with .Nope}}x{{else with .Name}}{{.}}{{end}}", &c),
        "/web"
    );
    // Go's truth: empty strings, arrays and maps, zero and null are false.
    for (value, want) in [
        (json!(""), "F"),
        (json!("x"), "T"),
        (json!(0), "F"),
        (json!(0.0), "F"),
        (json!(3), "T"),
        (json!([]), "F"),
        (json!([0]), "T"),
        (json!({}), "F"),
        (json!({"a": 1}), "T"),
        (json!(null), "F"),
        (json!(false), "F"),
        (json!(true), "T"),
    ] {
        assert_eq!(
            run("{{if .V}}T{{else}}F{{end}}", &json!({"V": value})),
            want,
            "{value}"
        );
    }
}

#[test]
fn range_forms() {
    let v = json!({"Empty": [], "M": {"z": 1, "a": 2}, "L": ["a", "b", "c", "d"]});
    assert_eq!(run("{{range .Empty}}x{{else}}empty{{end}}", &v), "empty");
    assert_eq!(run("{{range .Nope}}x{{else}}none{{end}}", &v), "none");
    assert_eq!(run("{{range .M}}{{.}}{{end}}", &v), "21");
    assert_eq!(run("{{range $k, $_ := .M}}{{$k}}{{end}}", &v), "az");
    assert_eq!(
        run("{{range .L}}{{if eq . \"b\"}}{{continue}}{{end}}{{if eq . \"d\"}}{{break}}{{end}}{{.}}{{end}}", &v),
        "ac"
    );
    assert_eq!(run("{{range 3}}{{.}}{{end}}", &v), "012");
    assert_eq!(
        run("{{range $i, $e := .L}}{{if $i}},{{end}}{{$e}}{{end}}", &v),
        "a,b,c,d"
    );
}

#[test]
fn functions() {
    let v = json!({"S": "Hello World", "N": 3, "L": ["x", "y"], "E": ""});
    assert_eq!(
        run("{{lower .S}} {{upper .S}}", &v),
        "hello world HELLO WORLD"
    );
    assert_eq!(
        run("{{title \"hello wide-world foo_bar\"}}", &v),
        "Hello Wide-World Foo_bar"
    );
    assert_eq!(run("{{split \"a,b,,c\" \",\"}}", &v), "[a b  c]");
    assert_eq!(run("{{len (split \"abc\" \"\")}}", &v), "3");
    assert_eq!(
        run("{{truncate .S 5}}|{{truncate .S 50}}", &v),
        "Hello|Hello World"
    );
    assert_eq!(
        run("[{{pad .S 2 1}}][{{pad .E 2 1}}]", &v),
        "[  Hello World ][]"
    );
    assert_eq!(run("{{len .S}} {{len .L}} {{len .}}", &v), "11 2 4");
    assert_eq!(run("{{index .L 1}} {{index .S 0}}", &v), "y 72");
    assert_eq!(run("{{print .N .N \"x\" .L}}", &v), "3 3x[x y]");
    assert_eq!(run("{{println .S .N}}", &v), "Hello World 3\n");
    assert_eq!(run("{{printf \"%s-%d\" .S .N}}", &v), "Hello World-3");
    assert_eq!(
        run("{{printf \"%5.1f|%-4d|%q\" 4.56789 7 .E}}", &v),
        "  4.6|7   |\"\""
    );
    assert_eq!(
        run("{{json .}}", &v),
        r#"{"E":"","L":["x","y"],"N":3,"S":"Hello World"}"#
    );
    assert_eq!(run("{{.L | json}}", &v), r#"["x","y"]"#);
    assert_eq!(run("{{json \"<a&b>\"}}", &v), r#""<a&b>""#);
    assert_eq!(run("{{.S | lower | printf \"%s!\"}}", &v), "hello world!");
}

#[test]
fn comparisons() {
    let v = json!({"N": 3, "F": 2.5, "S": "b"});
    assert_eq!(
        run(
            "{{eq .N 3}} {{eq .N 1 2 3}} {{ne .S \"b\"}} {{eq .N 3.0}}",
            &v
        ),
        "true true false true"
    );
    assert_eq!(
        run("{{lt .N 4}} {{le .N 3}} {{gt .F 2}} {{ge .S \"c\"}}", &v),
        "true true true false"
    );
    assert_eq!(run("{{eq .Nope nil}} {{eq .S nil}}", &v), "true false");
    assert_eq!(
        exec_error("{{lt .S 1}}", &v),
        r#"template: :1:2: executing "" at <lt>: error calling lt: incompatible types for comparison"#
    );
    assert_eq!(
        exec_error("{{lt true false}}", &v),
        r#"template: :1:2: executing "" at <lt>: error calling lt: invalid type for comparison"#
    );
}

#[test]
fn parse_errors_read_like_go() {
    assert_eq!(
        parse_error("{{foo .X}}"),
        r#"template: :1: function "foo" not defined"#
    );
    assert_eq!(parse_error("{{.X"), "template: :1: unclosed action");
    assert_eq!(
        parse_error("a\n{{end}}"),
        "template: :2: unexpected {{end}}"
    );
    assert_eq!(parse_error("{{else}}"), "template: :1: unexpected {{else}}");
    assert_eq!(parse_error("{{if .X}}x"), "template: :1: unexpected EOF");
    assert_eq!(
        parse_error("{{$x}}"),
        r#"template: :1: undefined variable "$x""#
    );
    assert_eq!(
        parse_error("{{if .A}}{{$x := 1}}{{end}}{{$x}}"),
        r#"template: :1: undefined variable "$x""#
    );
    assert_eq!(
        parse_error("{{}}"),
        "template: :1: missing value for command"
    );
    assert_eq!(
        parse_error("{{if}}{{end}}"),
        "template: :1: missing value for if"
    );
    assert_eq!(
        parse_error("{{.X | 3}}"),
        "template: :1: non executable command in pipeline stage 2"
    );
    assert_eq!(
        parse_error("{{.X :=}}"),
        r#"template: :1: unexpected ":=" in operand"#
    );
    assert_eq!(
        parse_error("{{.X ]}}"),
        "template: :1: unrecognized character in action: U+005D ']'"
    );
    assert_eq!(
        parse_error("{{break}}"),
        "template: :1: {{break}} outside {{range}}"
    );
    assert_eq!(parse_error("{{(.X}}"), "template: :1: unclosed left paren");
    assert_eq!(
        parse_error("{{\"x}}"),
        "template: :1: unterminated quoted string"
    );
    assert_eq!(
        parse_error("{{if .X}}{{else}}{{else}}{{end}}"),
        "template: :1: expected end; found {{else}}"
    );
    assert_eq!(
        parse_error("{{template \"x\"}}"),
        "template: :1: {{template}} is not supported: a --format template is a single template"
    );
    assert_eq!(
        parse_error("{{range $a, $b, $c := .}}{{end}}"),
        "template: :1: too many declarations in range"
    );
    assert!(parse_error("{{\"a\".B}}").contains("unexpected . after term"));
}

#[test]
fn exec_errors_read_like_go() {
    let c = container();
    assert_eq!(
        exec_error("{{.Name.First}}", &c),
        r#"template: :1:2: executing "" at <.Name.First>: can't evaluate field First in type string"#
    );
    assert_eq!(
        exec_error("{{.State.Health.Status}}", &c),
        r#"template: :1:2: executing "" at <.State.Health.Status>: nil pointer evaluating interface {}.Status"#
    );
    assert_eq!(
        exec_error("x\n  {{index .Args 5}}", &c),
        r#"template: :2:4: executing "" at <index>: error calling index: index out of range: 5"#
    );
    assert_eq!(
        exec_error("{{join .Args}}", &c),
        r#"template: :1:2: executing "" at <join>: wrong number of args for join: want 2 got 1"#
    );
    assert_eq!(
        exec_error("{{lower .State.Pid}}", &c),
        r#"template: :1:2: executing "" at <lower>: wrong type for value; expected string; got int"#
    );
    assert_eq!(
        exec_error("{{range .Name}}{{end}}", &c),
        r#"template: :1:8: executing "" at <{{range .Name}}>: range can't iterate over /web"#
    );
    assert_eq!(
        exec_error("{{.Name 1}}", &c),
        r#"template: :1:2: executing "" at <.Name>: Name is not a method but has arguments"#
    );
    assert_eq!(
        exec_error("{{len .State.Pid}}", &c),
        r#"template: :1:2: executing "" at <len>: error calling len: len of type int"#
    );
    assert_eq!(
        exec_error("{{. 1}}", &c),
        r#"template: :1:2: executing "" at <.>: can't give argument to non-function ."#
    );
    // Long operands are cut to 20 bytes as Go does.
    assert_eq!(
        exec_error("{{.NetworkSettings.IPAddress.Nope}}", &c),
        r#"template: :1:2: executing "" at <.NetworkSettings.IPA...>: can't evaluate field Nope in type string"#
    );
}

#[test]
fn strict_missing_keys() {
    let t = Template::parse("", "{{.ID}} {{.Nope}}").unwrap();
    let err = t
        .execute_with(
            &json!({"ID": "abc"}),
            Options {
                missing_key_error: true,
                header: false,
            },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"template: :1:10: executing "" at <.Nope>: map has no entry for key "Nope""#
    );
}

#[test]
fn header_mode_keeps_titles() {
    let t = Template::parse(
        "",
        "{{upper .Names}}\t{{json .Labels}}\t{{truncate .ID 3}}\t{{pad .Image 1 1}}",
    )
    .unwrap();
    let headers =
        json!({"Names": "NAMES", "Labels": "LABELS", "ID": "CONTAINER ID", "Image": "IMAGE"});
    let out = t
        .execute_with(
            &headers,
            Options {
                missing_key_error: false,
                header: true,
            },
        )
        .unwrap();
    // pad is not a header function in Docker, so it pads the title too.
    assert_eq!(out, "NAMES\tLABELS\tCONTAINER ID\t IMAGE ");
}

#[test]
fn parse_once_run_many() {
    let t = Template::parse("ps", "{{.ID}}:{{.Names}}").unwrap();
    let rows = [
        json!({"ID": "a", "Names": "x"}),
        json!({"ID": "b", "Names": "y"}),
    ];
    let out: Vec<String> = rows.iter().map(|r| t.execute(r).unwrap()).collect();
    assert_eq!(out, ["a:x", "b:y"]);
    assert_eq!(
        Template::parse("ps", "{{nope}}").unwrap_err().to_string(),
        r#"template: ps:1: function "nope" not defined"#
    );
}

#[test]
fn label_reads_a_label_from_a_list_row() {
    let row = json!({"Names": "web", "Labels": "tier=front,team=core"});
    assert_eq!(run(r#"{{.Label "team"}}/{{.Label "nope"}}"#, &row), "core/");
    let obj = json!({"Labels": {"tier": "front"}});
    assert_eq!(run(r#"{{.Label "tier"}}"#, &obj), "front");
}
