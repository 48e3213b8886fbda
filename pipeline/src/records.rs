//! The three input streams and their records, already validated: every
//! quantity is an exact decimal, every instant an epoch millisecond.

use crate::ids::MeterId;
use crate::time::EpochMs;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Load,
    Freeze,
    Event,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Load, Stream::Freeze, Stream::Event];

    pub fn name(self) -> &'static str {
        match self {
            Stream::Load => "load",
            Stream::Freeze => "freeze",
            Stream::Event => "event",
        }
    }

    pub fn topic_filter(self) -> &'static str {
        match self {
            Stream::Load => "meter/load/#",
            Stream::Freeze => "meter/freeze/#",
            Stream::Event => "meter/event/#",
        }
    }

    /// The stream a topic belongs to: `meter/load/T0001` → `Load`.
    pub fn parse(name: &str) -> Option<Stream> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// A 15-minute load point, primary-side kW/kvar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "LoadPointFields", into = "LoadPointFields")]
pub struct LoadPoint {
    pub meter_id: MeterId,
    pub ts: EpochMs,
    pub p_kw: Decimal,
    pub q_kvar: Option<Decimal>,
    /// Most feeds send no phase values, and the store holds a dozen
    /// instants of every meter, so they live apart: a point without them
    /// takes 72 bytes instead of 200.
    pub phases: Option<Box<Phases>>,
}

/// Phase voltages and currents, and the power factor, of a load point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phases {
    pub ua: Option<Decimal>,
    pub ub: Option<Decimal>,
    pub uc: Option<Decimal>,
    pub ia: Option<Decimal>,
    pub ib: Option<Decimal>,
    pub ic: Option<Decimal>,
    pub pf: Option<Decimal>,
}

impl Phases {
    /// In the order of [`Phases::from_values`].
    pub fn values(&self) -> [Option<Decimal>; 7] {
        [
            self.ua, self.ub, self.uc, self.ia, self.ib, self.ic, self.pf,
        ]
    }

    /// The phases of a point: none when every value is absent.
    pub fn from_values(v: [Option<Decimal>; 7]) -> Option<Box<Phases>> {
        let [ua, ub, uc, ia, ib, ic, pf] = v;
        v.iter().any(Option::is_some).then(|| {
            Box::new(Phases {
                ua,
                ub,
                uc,
                ia,
                ib,
                ic,
                pf,
            })
        })
    }
}

impl LoadPoint {
    /// A point with active power only.
    pub fn power_only(meter_id: MeterId, ts: EpochMs, p_kw: Decimal) -> Self {
        LoadPoint {
            meter_id,
            ts,
            p_kw,
            q_kvar: None,
            phases: None,
        }
    }

    /// The phase values, all absent when the point has none.
    pub fn phase_values(&self) -> [Option<Decimal>; 7] {
        self.phases.as_ref().map_or([None; 7], |p| p.values())
    }
}

/// A load point as one flat JSON object (the form earlier versions stored).
#[derive(Clone, Serialize, Deserialize)]
struct LoadPointFields {
    meter_id: MeterId,
    ts: EpochMs,
    p_kw: Decimal,
    q_kvar: Option<Decimal>,
    ua: Option<Decimal>,
    ub: Option<Decimal>,
    uc: Option<Decimal>,
    ia: Option<Decimal>,
    ib: Option<Decimal>,
    ic: Option<Decimal>,
    pf: Option<Decimal>,
}

impl From<LoadPointFields> for LoadPoint {
    fn from(f: LoadPointFields) -> Self {
        LoadPoint {
            meter_id: f.meter_id,
            ts: f.ts,
            p_kw: f.p_kw,
            q_kvar: f.q_kvar,
            phases: Phases::from_values([f.ua, f.ub, f.uc, f.ia, f.ib, f.ic, f.pf]),
        }
    }
}

impl From<LoadPoint> for LoadPointFields {
    fn from(l: LoadPoint) -> Self {
        let [ua, ub, uc, ia, ib, ic, pf] = l.phase_values();
        LoadPointFields {
            meter_id: l.meter_id,
            ts: l.ts,
            p_kw: l.p_kw,
            q_kvar: l.q_kvar,
            ua,
            ub,
            uc,
            ia,
            ib,
            ic,
            pf,
        }
    }
}

/// Daily frozen registers (示值, secondary side) at the end of `date`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Freeze {
    pub meter_id: MeterId,
    #[serde(with = "crate::time::date_serde")]
    pub date: NaiveDate,
    pub ts: EpochMs,
    pub reg_total: Decimal,
    pub reg_sharp: Option<Decimal>,
    pub reg_peak: Option<Decimal>,
    pub reg_flat: Option<Decimal>,
    pub reg_valley: Option<Decimal>,
    pub reg_q_total: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterEvent {
    pub meter_id: MeterId,
    pub ts: EpochMs,
    pub code: String,
    pub phase: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "stream", rename_all = "lowercase")]
pub enum Record {
    Load(LoadPoint),
    // Boxed: few records are freezes or events, and a record is moved a
    // handful of times between decoding and the store, so it should be as
    // small as a load point.
    Freeze(Box<Freeze>),
    Event(Box<MeterEvent>),
}

/// The identity of a record: a repeated key replaces the earlier record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    Load(EpochMs),
    Freeze(NaiveDate),
    Event(EpochMs, String),
}

impl Record {
    pub fn stream(&self) -> Stream {
        match self {
            Record::Load(_) => Stream::Load,
            Record::Freeze(_) => Stream::Freeze,
            Record::Event(_) => Stream::Event,
        }
    }

    pub fn meter_id(&self) -> &MeterId {
        match self {
            Record::Load(r) => &r.meter_id,
            Record::Freeze(r) => &r.meter_id,
            Record::Event(r) => &r.meter_id,
        }
    }

    pub fn set_meter_id(&mut self, id: MeterId) {
        match self {
            Record::Load(r) => r.meter_id = id,
            Record::Freeze(r) => r.meter_id = id,
            Record::Event(r) => r.meter_id = id,
        }
    }

    /// Key within the meter.
    pub fn key(&self) -> RecordKey {
        match self {
            Record::Load(r) => RecordKey::Load(r.ts),
            Record::Freeze(r) => RecordKey::Freeze(r.date),
            Record::Event(r) => RecordKey::Event(r.ts, r.code.clone()),
        }
    }
}
