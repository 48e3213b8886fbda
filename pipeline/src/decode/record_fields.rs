//! A record's fields by stream, taken as raw JSON while the payload is
//! parsed, then checked and typed into a [`Record`]: which fields a stream
//! has, which are required, and what each must hold.

use super::fields::{opt_num, opt_str, req_meter, req_num, req_str, req_ts, FieldResult};
use super::Reason;
use crate::archive::MeterIndex;
use crate::ids::MeterId;
use crate::records::{Freeze, LoadPoint, MeterEvent, Phases, Record, Stream};
use crate::time::parse_date;
use serde_json::value::RawValue;

/// A record's fields, still raw JSON, in the shape of its stream.
pub(super) enum Fields<'a> {
    Load(LoadIn<'a>),
    Freeze(FreezeIn<'a>),
    Event(EventIn<'a>),
}

impl<'a> Fields<'a> {
    pub(super) fn of(stream: Stream) -> Self {
        match stream {
            Stream::Load => Fields::Load(LoadIn::default()),
            Stream::Freeze => Fields::Freeze(FreezeIn::default()),
            Stream::Event => Fields::Event(EventIn::default()),
        }
    }

    /// The name and slot of field `key`; None for a field the stream does
    /// not have (ignored). A slot holding a value has met the field before.
    pub(super) fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)> {
        match self {
            Fields::Load(f) => f.slot(key),
            Fields::Freeze(f) => f.slot(key),
            Fields::Event(f) => f.slot(key),
        }
    }

    /// The record, and whether `meters` knows its meter.
    pub(super) fn validate(self, meters: Option<&MeterIndex>) -> FieldResult<(Record, bool)> {
        match self {
            Fields::Load(f) => f.validate(meters),
            Fields::Freeze(f) => f.validate(meters),
            Fields::Event(f) => f.validate(meters),
        }
    }
}

/// A stream's fields as a struct of raw JSON values, and the lookup of a
/// field by name, from one list of names.
macro_rules! raw_fields {
    ($name:ident { $($field:ident),* $(,)? }) => {
        #[derive(Default)]
        pub(super) struct $name<'a> {
            $($field: Option<&'a RawValue>,)*
        }

        impl<'a> $name<'a> {
            fn slot(&mut self, key: &str) -> Option<(&'static str, &mut Option<&'a RawValue>)> {
                match key {
                    $(stringify!($field) => Some((stringify!($field), &mut self.$field)),)*
                    _ => None,
                }
            }
        }
    };
}

/// The record's meter: the archive's shared id when `meters` knows it (no
/// allocation), a new one otherwise; and whether it is known.
fn meter(raw: Option<&RawValue>, meters: Option<&MeterIndex>) -> FieldResult<(MeterId, bool)> {
    let text = req_meter(raw)?;
    Ok(match meters.and_then(|m| m.canonical(&text)) {
        Some(id) => (id.clone(), true),
        None => (MeterId::new(&text), false),
    })
}

raw_fields!(LoadIn {
    meter_id,
    ts,
    p_kw,
    q_kvar,
    ua,
    ub,
    uc,
    ia,
    ib,
    ic,
    pf
});

/// Load points are 15-minute points: a timestamp off that grid is not one.
const LOAD_GRID_MS: i64 = 15 * 60_000;

impl LoadIn<'_> {
    fn validate(self, meters: Option<&MeterIndex>) -> FieldResult<(Record, bool)> {
        let ts = req_ts(self.ts, "ts")?;
        if ts.rem_euclid(LOAD_GRID_MS) != 0 {
            return Err((
                Reason::BadTimestamp,
                "`ts` of a load point must lie on the 15-minute grid (:00, :15, :30, :45)".into(),
            ));
        }
        let (meter_id, known) = meter(self.meter_id, meters)?;
        let point = LoadPoint {
            meter_id,
            ts,
            p_kw: req_num(self.p_kw, "p_kw")?,
            q_kvar: opt_num(self.q_kvar, "q_kvar")?,
            phases: Phases::from_values([
                opt_num(self.ua, "ua")?,
                opt_num(self.ub, "ub")?,
                opt_num(self.uc, "uc")?,
                opt_num(self.ia, "ia")?,
                opt_num(self.ib, "ib")?,
                opt_num(self.ic, "ic")?,
                opt_num(self.pf, "pf")?,
            ]),
        };
        Ok((Record::Load(point), known))
    }
}

raw_fields!(FreezeIn {
    meter_id,
    date,
    ts,
    reg_total,
    reg_sharp,
    reg_peak,
    reg_flat,
    reg_valley,
    reg_q_total
});

impl FreezeIn<'_> {
    fn validate(self, meters: Option<&MeterIndex>) -> FieldResult<(Record, bool)> {
        let date_text = req_str(self.date, "date")?;
        let date =
            parse_date(&date_text).map_err(|e| (Reason::BadTimestamp, format!("`date`: {e}")))?;
        let reg_total = req_num(self.reg_total, "reg_total")?;
        let regs = [
            ("reg_sharp", opt_num(self.reg_sharp, "reg_sharp")?),
            ("reg_peak", opt_num(self.reg_peak, "reg_peak")?),
            ("reg_flat", opt_num(self.reg_flat, "reg_flat")?),
            ("reg_valley", opt_num(self.reg_valley, "reg_valley")?),
            ("reg_q_total", opt_num(self.reg_q_total, "reg_q_total")?),
        ];
        if reg_total.is_sign_negative()
            || regs
                .iter()
                .any(|(_, v)| v.is_some_and(|d| d.is_sign_negative() && !d.is_zero()))
        {
            return Err((
                Reason::BadValue,
                "register readings cannot be negative".into(),
            ));
        }
        let (meter_id, known) = meter(self.meter_id, meters)?;
        let freeze = Freeze {
            meter_id,
            date,
            ts: req_ts(self.ts, "ts")?,
            reg_total,
            reg_sharp: regs[0].1,
            reg_peak: regs[1].1,
            reg_flat: regs[2].1,
            reg_valley: regs[3].1,
            reg_q_total: regs[4].1,
        };
        Ok((Record::Freeze(Box::new(freeze)), known))
    }
}

raw_fields!(EventIn {
    meter_id,
    ts,
    code,
    phase,
    state
});

impl EventIn<'_> {
    fn validate(self, meters: Option<&MeterIndex>) -> FieldResult<(Record, bool)> {
        let code = req_str(self.code, "code")?;
        if code.is_empty() {
            return Err((Reason::BadValue, "`code` is empty".into()));
        }
        let (meter_id, known) = meter(self.meter_id, meters)?;
        let event = MeterEvent {
            meter_id,
            ts: req_ts(self.ts, "ts")?,
            code,
            phase: opt_str(self.phase, "phase")?,
            state: opt_str(self.state, "state")?,
        };
        Ok((Record::Event(Box::new(event)), known))
    }
}
