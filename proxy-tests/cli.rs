//! The `mariadb` command-line client through shoal.

use crate::harness::{mariadb_cli, shared, Scratch, Shoal};

#[test]
fn batch_mode_queries_vertical_output_and_source() {
    let db = shared();
    let s = Scratch::new(db, "cli");
    let shoal = Shoal::start(db);
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["-D", &s.db, "-e", "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(10)); INSERT INTO t VALUES (1,'one'),(2,'two'); SELECT * FROM t ORDER BY id\\G"],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("*************************** 2. row ***************************"), "{out}");
    assert!(out.contains("name: two"), "{out}");

    // `source` of a file with several statements, comments and a DELIMITER block.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.sql");
    std::fs::write(
        &file,
        "-- a comment\nINSERT INTO t VALUES (3,'three');\n/* block */ UPDATE t SET name='TWO' WHERE id=2;\n\
         DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT COUNT(*) AS n FROM t; SELECT MAX(id) AS m FROM t; END//\nDELIMITER ;\nCALL p();\n",
    )
    .unwrap();
    let (ok, out, err) = mariadb_cli(
        shoal.port(),
        &s.user,
        Scratch::PASSWORD,
        &["-D", &s.db, "-N", "-B"],
        Some(&format!("source {}\nSELECT name FROM t WHERE id=2;\n", file.display())),
    );
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["3", "3", "TWO"], "{out}");
}

#[test]
fn wrong_password_is_refused_like_mariadb() {
    let db = shared();
    let s = Scratch::new(db, "pw");
    let shoal = Shoal::start(db);
    let (ok, _, err) = mariadb_cli(shoal.port(), &s.user, "not-it", &["-e", "SELECT 1"], None);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "ERROR 1045 (28000): Access denied for user '{}'@'localhost' (using password: YES)",
            s.user
        )),
        "{err}"
    );
    // And the same client with the right password still gets in.
    let (ok, out, err) = mariadb_cli(shoal.port(), &s.user, Scratch::PASSWORD, &["-N", "-e", "SELECT 40+2"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");
}

#[test]
fn unknown_database_is_reported() {
    let db = shared();
    let s = Scratch::new(db, "nodb");
    let shoal = Shoal::start(db);
    let (ok, _, err) =
        mariadb_cli(shoal.port(), &s.user, Scratch::PASSWORD, &["-D", "no_such_db", "-e", "SELECT 1"], None);
    assert!(!ok);
    assert!(err.contains("ERROR 1049") && err.contains("no_such_db"), "{err}");
}
