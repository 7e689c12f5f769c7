use super::*;

/// No earlier search in these tests.
fn no_search(search: &str) -> Result<Point> {
    Err(ExperimentError::Format {
        path: search.into(),
        message: "no earlier search here".into(),
    })
}

fn template() -> TrainSettings {
    toml::from_str(
        r#"
n_hidden = 50
batch_size = 100
records_per_cycle = 1
dropout = 0.0
label_smoothing = 0.0

[schedule]
kind = "triangular"
eta_min = 1e-5
eta_max = 0.1
n_s = 900
n_cycles = 2

[optimizer]
kind = "momentum"
mu = 0.9
nesterov = true

[augment]
flip = false
translate = 0
"#,
    )
    .unwrap()
}

fn space(text: &str) -> Space {
    Space(text.parse().unwrap())
}

const MIXED: &str = r#"
samples = 50
[lambda]
kind = "log_uniform"
min = 1e-5
max = 1e-1
[dropout]
kind = "uniform"
min = 0.1
max = 0.5
[n_hidden]
kind = "int"
min = 20
max = 23
[optimizer.mu]
kind = "choice"
values = [0.8, 0.9]
[schedule.n_s]
kind = "grid"
values = [500, 900]
"#;

#[test]
fn draws_are_within_bounds_and_deterministic() {
    let parsed = validate(&space(MIXED), &template()).unwrap();
    let dir = Path::new("/nonexistent");
    let a = draw_points(&parsed, 5, dir, &no_search).unwrap();
    let b = draw_points(&parsed, 5, dir, &no_search).unwrap();
    let c = draw_points(&parsed, 6, dir, &no_search).unwrap();
    assert_eq!(a, b, "the same seed gives the same points");
    assert_ne!(a, c, "another seed gives other points");
    // 2 grid values x 50 draws, the grid the outer loop.
    assert_eq!(a.len(), 100);
    let mut n_hidden_seen = std::collections::BTreeSet::new();
    for (i, p) in a.iter().enumerate() {
        assert!((1e-5..1e-1).contains(&p.lambda), "{}", p.lambda);
        let get = |k: &str| {
            p.settings
                .iter()
                .find(|(key, _)| key == k)
                .unwrap()
                .1
                .clone()
        };
        let dropout = get("dropout").as_float().unwrap();
        assert!((0.1..0.5).contains(&dropout), "{dropout}");
        let n_hidden = get("n_hidden").as_integer().unwrap();
        assert!((20..=23).contains(&n_hidden), "{n_hidden}");
        n_hidden_seen.insert(n_hidden);
        let mu = get("optimizer.mu").as_float().unwrap();
        assert!(mu == 0.8 || mu == 0.9, "{mu}");
        let n_s = get("schedule.n_s").as_integer().unwrap();
        assert_eq!(n_s, if i < 50 { 500 } else { 900 });
        // Every point is a valid config with those settings.
        let s = apply(&template(), &p.settings).unwrap();
        assert_eq!(s.n_hidden as i64, n_hidden);
        assert_eq!(s.dropout, dropout);
    }
    // The int bounds are inclusive: 50 draws of 4 values see both ends.
    assert_eq!(n_hidden_seen.len(), 4, "{n_hidden_seen:?}");
}

#[test]
fn log_uniform_draws_spread_over_the_decades() {
    let parsed = validate(
        &space("samples = 400\n[lambda]\nkind = \"log_uniform\"\nmin = 1e-5\nmax = 1e-1\n"),
        &template(),
    )
    .unwrap();
    let points = draw_points(&parsed, 1, Path::new("."), &no_search).unwrap();
    // Each of the 4 decades holds about a quarter (100 +- 4 sigma = 35).
    for d in 0..4 {
        let lo = 10f64.powi(-5 + d);
        let n = points
            .iter()
            .filter(|p| (lo..lo * 10.0).contains(&p.lambda))
            .count();
        assert!((65..=135).contains(&n), "decade {d}: {n}");
    }
}

#[test]
fn bad_spaces_are_refused_naming_the_key() {
    let cases = [
        // Not a setting (typo), and a key of another schedule kind.
        (
            "[schedule.eta_mx]\nkind = \"uniform\"\nmin = 0.01\nmax = 0.1",
            "space.schedule.eta_mx",
        ),
        (
            "[schedule.div_factor]\nkind = \"uniform\"\nmin = 2.0\nmax = 3.0",
            "space.schedule.div_factor",
        ),
        // An unknown distribution, and an unknown field of one.
        (
            "[dropout]\nkind = \"normal\"\nmin = 0.0\nmax = 0.5",
            "space.dropout",
        ),
        (
            "[dropout]\nkind = \"uniform\"\nmin = 0.0\nmax = 0.5\nstep = 1",
            "space.dropout",
        ),
        // Bounds in the wrong order, outside the setting's range.
        (
            "[dropout]\nkind = \"uniform\"\nmin = 0.5\nmax = 0.1",
            "space.dropout",
        ),
        (
            "[dropout]\nkind = \"uniform\"\nmin = 0.1\nmax = 1.2",
            "space.dropout",
        ),
        (
            "[schedule.eta_max]\nkind = \"log_uniform\"\nmin = 0.0\nmax = 0.1",
            "space.schedule.eta_max",
        ),
        (
            "[n_hidden]\nkind = \"int\"\nmin = 0\nmax = 10",
            "space.n_hidden",
        ),
        // A float distribution on an integer setting; a wrong type in a grid.
        (
            "[n_hidden]\nkind = \"uniform\"\nmin = 10.0\nmax = 20.0",
            "space.n_hidden",
        ),
        (
            "[batch_size]\nkind = \"grid\"\nvalues = [\"big\"]",
            "space.batch_size",
        ),
        (
            "[optimizer.nesterov]\nkind = \"grid\"\nvalues = [1]",
            "space.optimizer.nesterov",
        ),
        // Not a table.
        ("dropout = 0.3", "space.dropout"),
    ];
    for (extra, key) in cases {
        let text = format!("samples = 1\n{extra}\n[lambda]\nkind = \"grid\"\nvalues = [0.001]\n");
        let err = validate(&space(&text), &template()).unwrap_err();
        assert_eq!(err.key, key, "{extra}: {}", err.message);
    }
    // Whole spaces: no lambda axis, samples with grids only or missing, a
    // negative lambda, a factor below 1.
    let spaces = [
        (
            "samples = 1\n[dropout]\nkind = \"grid\"\nvalues = [0.1]\n",
            "space.lambda",
        ),
        (
            "samples = 3\n[lambda]\nkind = \"grid\"\nvalues = [0.1]\n",
            "space.samples",
        ),
        ("[lambda]\nkind = \"grid\"\nvalues = [0.1]\n", "space.samples"),
        (
            "samples = 1\n[lambda]\nkind = \"grid\"\nvalues = [-0.1]\n",
            "space.lambda",
        ),
        (
            "samples = 1\n[lambda]\nkind = \"around_best_log\"\nsearch = \"c\"\nn = 5\nfactor = 0.5\n",
            "space.lambda",
        ),
    ];
    for (text, key) in spaces {
        let err = validate(&space(text), &template()).unwrap_err();
        assert_eq!(err.key, key, "{text}: {}", err.message);
    }
}

#[test]
fn the_message_of_an_unknown_key_lists_the_settings() {
    let text = "samples = 1\n[lambda]\nkind = \"grid\"\nvalues = [0.1]\n[dropuot]\nkind = \"grid\"\nvalues = [0.1]\n";
    let err = validate(&space(text), &template()).unwrap_err();
    assert!(
        err.message.contains("dropout") && err.message.contains("schedule.eta_max"),
        "{}",
        err.message
    );
}

#[test]
fn around_best_log_brackets_the_centre() {
    let v = around_log(4e-5, 5, 4.0);
    assert_eq!(v.len(), 5);
    assert_eq!(v[2], 4e-5);
    assert!(
        (v[0] - 1e-5).abs() < 1e-17 && (v[4] - 1.6e-4).abs() < 1e-16,
        "{v:?}"
    );
    // Evenly spaced in log space: equal ratios (2 here).
    for w in v.windows(2) {
        assert!((w[1] / w[0] - 2.0).abs() < 1e-9, "{v:?}");
    }
    let even = around_log(1e-3, 4, 10.0);
    assert!(even[0] < 1e-3 && even[3] > 1e-3, "{even:?}");
}

#[test]
fn settings_round_trip_through_their_string() {
    let settings = vec![
        ("dropout".to_string(), toml::Value::Float(0.123456789012345)),
        ("n_hidden".to_string(), toml::Value::Integer(300)),
        (
            "optimizer.nesterov".to_string(),
            toml::Value::Boolean(false),
        ),
        ("schedule.eta_max".to_string(), toml::Value::Float(1e-7)),
    ];
    let text = settings_string(&settings);
    assert_eq!(parse_settings(&text).unwrap(), settings, "{text}");
    assert_eq!(parse_settings("").unwrap(), vec![]);
    assert!(parse_settings("dropout").is_err());
}

#[test]
fn a_lambda_grid_space_gives_its_values_in_order() {
    let s = Space::lambda_grid(&[0.3, 0.1, 0.2]);
    let parsed = validate(&s, &template()).unwrap();
    let points = draw_points(&parsed, 9, Path::new("."), &no_search).unwrap();
    let lambdas: Vec<f64> = points.iter().map(|p| p.lambda).collect();
    assert_eq!(lambdas, vec![0.3, 0.1, 0.2]);
    assert!(points.iter().all(|p| p.settings.is_empty()));
}

/// `curve_train_rows` is a setting like the others: integers can be drawn
/// when `[train]` holds an integer; 0 is refused naming the key; over
/// `"all"` (a string) integers are refused as the wrong type.
#[test]
fn curve_train_rows_in_a_space() {
    use mlp::train::CurveTrainRows;
    let mut with_rows = template();
    with_rows.curve_train_rows = CurveTrainRows::First(5000);
    let grid = |values: &str| {
        space(&format!(
            "samples = 1\n[lambda]\nkind = \"grid\"\nvalues = [0.001]\n\
             [curve_train_rows]\nkind = \"grid\"\nvalues = {values}\n"
        ))
    };
    let parsed = validate(&grid("[1000, 45000]"), &with_rows).unwrap();
    let points = draw_points(&parsed, 1, Path::new("/nonexistent"), &no_search).unwrap();
    let rows: Vec<CurveTrainRows> = points
        .iter()
        .map(|p| apply(&with_rows, &p.settings).unwrap().curve_train_rows)
        .collect();
    assert_eq!(
        rows,
        [CurveTrainRows::First(1000), CurveTrainRows::First(45000)]
    );
    let e = validate(&grid("[0, 1000]"), &with_rows).unwrap_err();
    assert_eq!(e.key, "space.curve_train_rows", "{}", e.message);
    let e = validate(&grid("[1000]"), &template()).unwrap_err();
    assert_eq!(e.key, "space.curve_train_rows", "{}", e.message);
}
