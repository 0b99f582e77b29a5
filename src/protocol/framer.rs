//! Where does a backend response end? A pure state machine over response frames.
//!
//! The relay forwards frames as raw bytes and feeds each one to a [`Framer`], which looks
//! at the first byte (and, for terminators, the status flags) and says whether the
//! response goes on. Rows are never decoded. `D` below is `CLIENT_DEPRECATE_EOF`.
//!
//! | state | frame | next |
//! |---|---|---|
//! | `ResultStart` | `0x00` OK | done, or `ResultStart` if `MORE_RESULTS_EXISTS` |
//! | `ResultStart` | `0xFF` ERR | done (an error ends the whole response) |
//! | `ResultStart` | `0xFB` | `LocalInfile`: the client sends a file, then OK/ERR follows (`ResultStart`) |
//! | `ResultStart` | column count n | `Columns(n)` |
//! | `Columns(n)` | column definition | `Columns(n-1)`; at 0: `Rows` if D, else `ColumnsEof` |
//! | `ColumnsEof` | EOF | done if `CURSOR_EXISTS` and the command asked for a cursor ([`Expect::Cursor`]), else `Rows` |
//! | `Rows` | `0xFE`, short (< 9 bytes, or < 16 MiB if D) | done, or `ResultStart` if `MORE_RESULTS_EXISTS` |
//! | `Rows` | `0xFF` ERR | done |
//! | `Rows` | anything else | `Rows` (a row) |
//! | `PrepareOk` | `0x00` OK(stmt, cols, params) | `Params(params)` / `PrepColumns(cols)` / done |
//! | `FieldList` | `0xFE` short / `0xFF` | done; anything else is a column definition |
//! | `Single` | any | done (PING, INIT_DB, RESET, STATISTICS, …) |
//!
//! A frame of exactly 16 MiB − 1 bytes is continued by the next frame, which is never
//! interpreted on its own.

use super::packet::{lenenc_int, PAYLOAD_MAX};
use super::reply::{parse_eof, parse_ok, OkInfo};
use super::StatusFlags;

/// The shape of response a command produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// COM_QUERY and COM_STMT_EXECUTE: OK, ERR, LOCAL INFILE request or result sets.
    Results,
    /// COM_STMT_EXECUTE with a cursor flag: as `Results`, but a result set whose column
    /// definitions end with `CURSOR_EXISTS` ends there (rows come by COM_STMT_FETCH).
    /// Only here does the flag mean that: a stored procedure that used a cursor leaves it
    /// set on the result sets of a plain `CALL`, whose rows follow as usual.
    Cursor,
    /// COM_STMT_PREPARE: OK with parameter and column definitions, or ERR.
    Prepare,
    /// COM_FIELD_LIST: column definitions ended by EOF, or ERR.
    FieldList,
    /// COM_STMT_FETCH: rows ended by EOF, or ERR.
    Rows,
    /// Every other command with a response: exactly one packet.
    Single,
}

/// What the relay does after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The response goes on.
    More,
    /// The backend asks for a LOCAL INFILE: relay the client's file packets, then go on.
    LocalInfile,
    /// The response is complete.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ResultStart,
    Columns(u64),
    ColumnsEof,
    Rows,
    PrepareOk,
    Params { left: u16, columns: u16 },
    ParamsEof { columns: u16 },
    PrepColumns(u16),
    PrepColumnsEof,
    FieldList,
    Single,
    Finished,
}

/// Tracks one response; create one per command.
#[derive(Debug, Clone)]
pub struct Framer {
    state: State,
    /// Whether EOF packets are replaced by OK packets (client and backend agree on it).
    deprecate_eof: bool,
    /// The command asked for a cursor ([`Expect::Cursor`]).
    cursor: bool,
    /// The previous frame was exactly `PAYLOAD_MAX` long, so this one continues it.
    continuation: bool,
    /// The last OK/EOF seen: its status flags are the session's state after the response.
    pub last_ok: Option<OkInfo>,
    /// The first non-zero auto-increment id reported by an OK packet.
    pub insert_id: u64,
    /// The response ended with an ERR packet (its code).
    pub error: Option<u16>,
    /// Statement id and parameter count of a COM_STMT_PREPARE response.
    pub prepared: Option<(u32, u16)>,
    /// Rows of the last result set (what `FOUND_ROWS()` reports after a plain SELECT).
    pub rows: u64,
    /// The response had a result set; `last_is_rows`: its last result was one (then
    /// `ROW_COUNT()` is -1, else the last OK's affected rows).
    pub had_rows: bool,
    /// See `had_rows`.
    pub last_is_rows: bool,
}

impl Framer {
    /// A framer for a response of the given shape.
    pub fn new(expect: Expect, deprecate_eof: bool) -> Self {
        let state = match expect {
            Expect::Results | Expect::Cursor => State::ResultStart,
            Expect::Prepare => State::PrepareOk,
            Expect::FieldList => State::FieldList,
            Expect::Rows => State::Rows,
            Expect::Single => State::Single,
        };
        let cursor = expect == Expect::Cursor;
        Framer {
            state,
            deprecate_eof,
            cursor,
            continuation: false,
            last_ok: None,
            insert_id: 0,
            error: None,
            prepared: None,
            rows: 0,
            had_rows: false,
            last_is_rows: false,
        }
    }

    /// True once the response is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Finished
    }

    /// What `ROW_COUNT()` reports after this response: -1 after a result set or an error,
    /// else the affected rows of the last OK.
    pub fn row_count(&self) -> i64 {
        match (self.error, self.last_is_rows, self.last_ok) {
            (None, false, Some(ok)) => ok.affected_rows as i64,
            _ => -1,
        }
    }

    /// Warnings the response reported (last OK/EOF), or whether it ended in an error:
    /// either leaves diagnostics on the connection for `SHOW WARNINGS` and friends.
    pub fn left_diagnostics(&self) -> bool {
        self.error.is_some() || self.last_ok.is_some_and(|ok| ok.warnings > 0)
    }

    /// Status flags after the response, if an OK/EOF said so.
    pub fn status(&self) -> Option<u16> {
        self.last_ok.map(|ok| ok.status)
    }

    /// Feeds one frame's payload.
    pub fn on_frame(&mut self, payload: &[u8]) -> Step {
        let continued = self.continuation;
        self.continuation = payload.len() == PAYLOAD_MAX;
        if continued {
            return Step::More;
        }
        let first = payload.first().copied();
        match self.state {
            State::ResultStart => match first {
                Some(0x00) => self.ok_then(payload),
                Some(0xFF) => self.err(payload),
                Some(0xFB) => Step::LocalInfile,
                Some(0xFE) => self.terminator(payload),
                _ => match lenenc_int(payload) {
                    Some((0, _)) | None => self.protocol_violation(),
                    Some((n, _)) => {
                        self.state = State::Columns(n);
                        self.rows = 0;
                        self.had_rows = true;
                        self.last_is_rows = true;
                        Step::More
                    }
                },
            },
            State::Columns(n) => {
                self.state = match (n - 1, self.deprecate_eof) {
                    (0, true) => State::Rows,
                    (0, false) => State::ColumnsEof,
                    (left, _) => State::Columns(left),
                };
                Step::More
            }
            State::ColumnsEof => match first {
                Some(0xFE) => {
                    let eof = parse_eof(payload);
                    self.last_ok = eof.or(self.last_ok);
                    let cursor = StatusFlags::SERVER_STATUS_CURSOR_EXISTS.bits();
                    if self.cursor && eof.is_some_and(|e| e.status & cursor != 0) {
                        self.finish()
                    } else {
                        self.state = State::Rows;
                        Step::More
                    }
                }
                Some(0xFF) => self.err(payload),
                _ => self.protocol_violation(),
            },
            State::Rows => match first {
                Some(0xFE) if self.is_short_terminator(payload) => self.terminator(payload),
                Some(0xFF) => self.err(payload),
                _ => {
                    self.rows += 1;
                    Step::More
                }
            },
            State::PrepareOk => match first {
                Some(0x00) if payload.len() >= 9 => {
                    let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
                    let columns = u16::from_le_bytes([payload[5], payload[6]]);
                    let params = u16::from_le_bytes([payload[7], payload[8]]);
                    self.prepared = Some((id, params));
                    self.after_params_or_columns(params, columns)
                }
                Some(0xFF) => self.err(payload),
                _ => self.protocol_violation(),
            },
            State::Params { left, columns } => {
                if left > 1 {
                    self.state = State::Params { left: left - 1, columns };
                    Step::More
                } else if self.deprecate_eof {
                    self.after_params_or_columns(0, columns)
                } else {
                    self.state = State::ParamsEof { columns };
                    Step::More
                }
            }
            State::ParamsEof { columns } => self.after_params_or_columns(0, columns),
            State::PrepColumns(left) => {
                if left > 1 {
                    self.state = State::PrepColumns(left - 1);
                    Step::More
                } else if self.deprecate_eof {
                    self.finish()
                } else {
                    self.state = State::PrepColumnsEof;
                    Step::More
                }
            }
            State::PrepColumnsEof => self.finish(),
            State::FieldList => match first {
                Some(0xFE) if self.is_short_terminator(payload) => {
                    self.read_terminator(payload);
                    self.finish()
                }
                Some(0xFF) => self.err(payload),
                _ => Step::More,
            },
            State::Single => {
                match first {
                    Some(0x00) => self.last_ok = parse_ok(payload).or(self.last_ok),
                    Some(0xFE) => self.read_terminator(payload),
                    Some(0xFF) => return self.err(payload),
                    _ => {}
                }
                self.finish()
            }
            State::Finished => self.protocol_violation(),
        }
    }

    fn is_short_terminator(&self, payload: &[u8]) -> bool {
        if self.deprecate_eof {
            payload.len() < PAYLOAD_MAX
        } else {
            payload.len() < 9
        }
    }

    fn read_terminator(&mut self, payload: &[u8]) {
        let info = if payload.len() < 9 && !self.deprecate_eof { parse_eof(payload) } else { parse_ok(payload) };
        self.last_ok = info.or(self.last_ok);
    }

    fn terminator(&mut self, payload: &[u8]) -> Step {
        self.read_terminator(payload);
        self.next_result_or_finish()
    }

    fn ok_then(&mut self, payload: &[u8]) -> Step {
        self.last_is_rows = false;
        let ok = parse_ok(payload);
        if let Some(ok) = ok {
            if self.insert_id == 0 {
                self.insert_id = ok.last_insert_id;
            }
        }
        self.last_ok = ok.or(self.last_ok);
        self.next_result_or_finish()
    }

    fn next_result_or_finish(&mut self) -> Step {
        if self.last_ok.is_some_and(|ok| ok.more_results()) {
            self.state = State::ResultStart;
            Step::More
        } else {
            self.finish()
        }
    }

    fn after_params_or_columns(&mut self, params: u16, columns: u16) -> Step {
        if params > 0 {
            self.state = State::Params { left: params, columns };
            Step::More
        } else if columns > 0 {
            self.state = State::PrepColumns(columns);
            Step::More
        } else {
            self.finish()
        }
    }

    fn err(&mut self, payload: &[u8]) -> Step {
        self.error = Some(payload.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]])));
        self.finish()
    }

    /// A frame that cannot appear here: end the response so the relay can report a broken
    /// backend instead of waiting forever. `error` is set to 0 to mark it.
    fn protocol_violation(&mut self) -> Step {
        self.error = Some(0);
        self.finish()
    }

    fn finish(&mut self) -> Step {
        self.state = State::Finished;
        Step::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::reply::OkInfo;
    use bytes::BytesMut;

    fn ok(status: u16) -> Vec<u8> {
        let mut b = BytesMut::new();
        crate::protocol::reply::put_ok(&mut b, 0, &OkInfo { status, ..Default::default() }, false);
        b[4..].to_vec()
    }
    fn eof(status: u16) -> Vec<u8> {
        let s = status.to_le_bytes();
        vec![0xFE, 0, 0, s[0], s[1]]
    }
    fn ok_eof(status: u16) -> Vec<u8> {
        let mut p = ok(status);
        p[0] = 0xFE;
        p
    }
    const MORE: u16 = 0x0008;
    const CURSOR: u16 = 0x0040;

    fn run(f: &mut Framer, frames: &[Vec<u8>]) -> Vec<Step> {
        frames.iter().map(|p| f.on_frame(p)).collect()
    }

    #[test]
    fn ok_ends() {
        let mut f = Framer::new(Expect::Results, false);
        assert_eq!(f.on_frame(&ok(2)), Step::Done);
        assert_eq!(f.status(), Some(2));
    }

    #[test]
    fn result_set_with_eof() {
        let mut f = Framer::new(Expect::Results, false);
        let frames = [vec![2], vec![3, b'd'], vec![3, b'd'], eof(2), vec![1, b'a'], vec![0xFB], eof(2)];
        let steps = run(&mut f, &frames);
        assert_eq!(steps.last(), Some(&Step::Done));
        assert!(steps[..steps.len() - 1].iter().all(|s| *s == Step::More));
    }

    #[test]
    fn rows_and_row_count() {
        let mut f = Framer::new(Expect::Results, false);
        let frames = [vec![1], vec![3], eof(2), vec![1, b'a'], vec![1, b'b'], vec![1, b'c'], eof(2)];
        run(&mut f, &frames);
        assert_eq!((f.rows, f.had_rows, f.row_count()), (3, true, -1));
        let mut f = Framer::new(Expect::Results, true);
        let mut three = ok(2);
        three[1] = 3;
        f.on_frame(&three);
        assert_eq!((f.had_rows, f.row_count()), (false, 3));
        assert!(!f.left_diagnostics());
        let mut f = Framer::new(Expect::Results, true);
        f.on_frame(&[0xFF, 0x4d, 0x05, b'#']);
        assert_eq!(f.row_count(), -1);
        assert!(f.left_diagnostics());
    }

    #[test]
    fn result_set_deprecate_eof() {
        let mut f = Framer::new(Expect::Results, true);
        let frames = [vec![1], vec![3, b'd'], vec![1, b'a'], ok_eof(2)];
        assert_eq!(run(&mut f, &frames), [Step::More, Step::More, Step::More, Step::Done]);
    }

    #[test]
    fn multi_results_continue_until_last() {
        let mut f = Framer::new(Expect::Results, true);
        let frames = [ok(MORE), vec![1], vec![3], vec![1, b'x'], ok_eof(MORE | 2), ok(2)];
        let steps = run(&mut f, &frames);
        assert_eq!(steps, [Step::More, Step::More, Step::More, Step::More, Step::More, Step::Done]);
    }

    #[test]
    fn error_mid_rows_ends() {
        let mut f = Framer::new(Expect::Results, false);
        let frames = [vec![1], vec![3], eof(0), vec![1, b'x'], vec![0xFF, 0x10, 0x04, b'#']];
        assert_eq!(run(&mut f, &frames).last(), Some(&Step::Done));
        assert_eq!(f.error, Some(0x0410));
    }

    #[test]
    fn long_row_starting_with_fe_is_a_row() {
        let mut f = Framer::new(Expect::Results, false);
        let mut row = vec![0xFE];
        row.extend_from_slice(&[0u8; 9]);
        assert_eq!(run(&mut f, &[vec![1], vec![3], eof(0), row]), [Step::More; 4]);
    }

    #[test]
    fn split_row_continuations_are_not_interpreted() {
        let mut f = Framer::new(Expect::Results, true);
        let big = vec![0xFCu8; PAYLOAD_MAX];
        let tail_looks_like_eof = ok_eof(0);
        let steps = run(&mut f, &[vec![1], vec![3], big, tail_looks_like_eof, ok_eof(0)]);
        assert_eq!(steps, [Step::More, Step::More, Step::More, Step::More, Step::Done]);
    }

    #[test]
    fn local_infile_then_ok() {
        let mut f = Framer::new(Expect::Results, false);
        assert_eq!(f.on_frame(b"\xFBfile.csv"), Step::LocalInfile);
        assert_eq!(f.on_frame(&ok(2)), Step::Done);
    }

    #[test]
    fn prepare_with_params_and_columns() {
        let mut f = Framer::new(Expect::Prepare, false);
        let prep = vec![0, 7, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0];
        let frames = [prep, vec![3], eof(0), vec![3], vec![3], eof(0)];
        assert_eq!(run(&mut f, &frames).last(), Some(&Step::Done));
        assert_eq!(f.prepared, Some((7, 1)));
        let mut f = Framer::new(Expect::Prepare, true);
        let prep = vec![0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(f.on_frame(&prep), Step::Done);
    }

    #[test]
    fn cursor_open_ends_after_metadata() {
        let mut f = Framer::new(Expect::Cursor, false);
        assert_eq!(run(&mut f, &[vec![1], vec![3], eof(CURSOR)]), [Step::More, Step::More, Step::Done]);
        let mut f = Framer::new(Expect::Rows, false);
        assert_eq!(run(&mut f, &[vec![0, 1], eof(0x80)]), [Step::More, Step::Done]);
    }

    #[test]
    fn cursor_flag_without_a_cursor_request_is_not_an_end() {
        // `CALL p()` where p used a cursor: the flag stays set on the procedure's result set.
        let mut f = Framer::new(Expect::Results, false);
        let frames = [vec![1], vec![3], eof(CURSOR | MORE), vec![1, b'1'], eof(CURSOR | MORE), ok(2)];
        let steps = run(&mut f, &frames);
        assert_eq!(steps.last(), Some(&Step::Done));
        assert!(steps[..steps.len() - 1].iter().all(|s| *s == Step::More), "{steps:?}");
    }

    #[test]
    fn garbage_never_hangs() {
        let mut f = Framer::new(Expect::Results, false);
        assert_eq!(f.on_frame(&[]), Step::Done);
        assert_eq!(f.error, Some(0));
    }
}
