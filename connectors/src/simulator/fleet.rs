//! The simulated customer archive: who the customers are, their meters,
//! multipliers and terminals, and which customers carry a planted anomaly or
//! a near miss (their "role"). Everything derives from the seed.

use chrono::{Duration, NaiveDate};
use serde_json::{json, Value};

use super::rng::Rng;
use super::SimOptions;

/// 用电类别 as the archive spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Category {
    LargeIndustry,
    GeneralCommerce,
    Residential,
    Agriculture,
}

impl Category {
    pub(super) fn code(self) -> &'static str {
        match self {
            Category::LargeIndustry => "large_industry",
            Category::GeneralCommerce => "general_industry_commerce",
            Category::Residential => "residential",
            Category::Agriculture => "agriculture",
        }
    }
}

/// The daily load curve family a customer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// One day shift: high 08:00–18:00, low at night, weekends lower.
    DayShift,
    /// Continuous process: flat around the clock.
    ThreeShift,
    /// Shops, offices, hotels: 09:00–21:00.
    Commerce,
    /// Households: evening peak.
    Residential,
    /// Irrigation pumps: mostly at night (valley price), seasonal.
    Agriculture,
}

/// What a customer is for in the demo. `Normal` and `Suspended` are the
/// background fleet; the others each plant one anomaly or one near miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    Normal,
    Suspended,
    OverCapSingle,
    OverCapMulti,
    ValleyExcess,
    RegisterReversal,
    ZeroConsumption,
    EnergyDrop,
    CoverOpen,
    NearOverCapExact,
    NearOverCapSpike,
    NearDropExact,
    NearZeroAlmost,
    NearSuspendedZero,
    NearCoverEnd,
}

/// Special roles in placement order; the fleet spreads them evenly over the
/// customer ids so they do not cluster at the start of a listing.
pub(super) const SPECIAL_ROLES: [Role; 13] = [
    Role::OverCapSingle,
    Role::OverCapMulti,
    Role::ValleyExcess,
    Role::RegisterReversal,
    Role::ZeroConsumption,
    Role::EnergyDrop,
    Role::CoverOpen,
    Role::NearOverCapExact,
    Role::NearOverCapSpike,
    Role::NearDropExact,
    Role::NearZeroAlmost,
    Role::NearSuspendedZero,
    Role::NearCoverEnd,
];

/// Indexes into `Regs`-style register arrays: 尖 / 峰 / 平 / 谷.
pub(super) const SHARP: usize = 0;
pub(super) const PEAK: usize = 1;
pub(super) const FLAT: usize = 2;
pub(super) const VALLEY: usize = 3;

pub(super) struct SimMeter {
    pub id: String,
    /// 综合倍率 (CT ratio × PT ratio).
    pub multiplier: i64,
    /// This meter's fraction of the customer's load.
    pub share: f64,
    /// Secondary-side register readings before the run, hundredths of kWh,
    /// per bucket (SHARP, PEAK, FLAT, VALLEY).
    pub reg0: [i64; 4],
    /// Reactive register before the run, hundredths of kvarh.
    pub q0: i64,
}

pub(super) struct SimCustomer {
    pub index: usize,
    pub id: String,
    pub name: String,
    pub org_code: &'static str,
    pub category: Category,
    pub contract_kva: i64,
    pub voltage_kv: Voltage,
    pub role: Role,
    pub shape: Shape,
    /// Scales the shape so customers of one family differ.
    pub load_factor: f64,
    /// tan φ of the customer's power factor: q = p × tan φ.
    pub tan_phi: f64,
    pub basic_fee_mode: &'static str,
    pub capacity_changes: Vec<Value>,
    pub meters: Vec<SimMeter>,
}

impl SimCustomer {
    pub(super) fn suspended(&self) -> bool {
        matches!(self.role, Role::Suspended | Role::NearSuspendedZero)
    }
    pub(super) fn two_part(&self) -> bool {
        self.category == Category::LargeIndustry
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Voltage {
    V220,
    V400,
    Kv10,
}

impl Voltage {
    fn json(self) -> Value {
        match self {
            Voltage::V220 => json!(0.22),
            Voltage::V400 => json!(0.4),
            Voltage::Kv10 => json!(10),
        }
    }
}

/// Position of one meter in the fleet: `fleet.customers[customer].meters[meter]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct MeterRef {
    pub customer: usize,
    pub meter: usize,
}

/// A collection terminal: the topic suffix its meters publish under.
pub(super) struct Terminal {
    pub id: String,
    /// Flat meter indexes (into `Fleet::meters`).
    pub meters: Vec<usize>,
}

pub(super) struct Fleet {
    pub seed: u64,
    pub start: NaiveDate,
    pub customers: Vec<SimCustomer>,
    pub meters: Vec<MeterRef>,
    pub terminals: Vec<Terminal>,
    /// Terminal index of each flat meter.
    pub terminal_of: Vec<usize>,
}

impl Fleet {
    pub(super) fn meter(&self, flat: usize) -> Option<(&SimCustomer, &SimMeter)> {
        let r = self.meters.get(flat)?;
        let c = self.customers.get(r.customer)?;
        Some((c, c.meters.get(r.meter)?))
    }

    pub(super) fn with_role(&self, role: Role) -> Option<&SimCustomer> {
        self.customers.iter().find(|c| c.role == role)
    }
}

/// Province 41 (Henan): a few cities and counties. (org_code, city, county)
const COUNTIES: [(&str, &str, &str); 7] = [
    ("41/4101/410102", "郑州", "中原区"),
    ("41/4101/410105", "郑州", "金水区"),
    ("41/4101/410122", "郑州", "中牟县"),
    ("41/4103/410311", "洛阳", "洛龙区"),
    ("41/4103/410323", "洛阳", "新安县"),
    ("41/4107/410711", "新乡", "牧野区"),
    ("41/4107/410727", "新乡", "封丘县"),
];

const BRANDS: [&str; 16] = [
    "宏达", "鑫源", "华丰", "瑞通", "金盛", "永安", "中原", "天成", "恒信", "东方", "豫丰", "昌盛",
    "嘉禾", "万通", "博远", "隆基",
];
const TRADES: [&str; 10] = [
    "机械制造",
    "纺织",
    "食品",
    "建材",
    "化工",
    "铸造",
    "塑料制品",
    "印务",
    "物流",
    "钢结构",
];
const SHOPS: [&str; 6] = ["商贸", "超市", "酒店", "餐饮", "百货", "汽车服务"];
const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗",
];
const GIVEN: [&str; 22] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
    "超", "秀英", "霞", "平", "刚", "桂英",
];
const VILLAGES: [&str; 8] = [
    "王庄", "李庄", "张湾", "刘寨", "杨楼", "前营", "后河", "东岗",
];

const TAG_CUSTOMER: u64 = 1;

/// What a customer looks like before ids are assigned.
struct Spec {
    category: Category,
    contract_kva: i64,
    shares: Vec<f64>,
    shape: Shape,
}

pub(super) fn build(opts: &SimOptions) -> Fleet {
    let roles = role_layout(opts.customers);
    let mut next_meter: u64 = 1;
    let customers: Vec<SimCustomer> = roles
        .iter()
        .enumerate()
        .map(|(i, role)| build_customer(opts, i, *role, &mut next_meter))
        .collect();
    let meters: Vec<MeterRef> = customers
        .iter()
        .enumerate()
        .flat_map(|(ci, c)| {
            (0..c.meters.len()).map(move |mi| MeterRef {
                customer: ci,
                meter: mi,
            })
        })
        .collect();
    let (terminals, terminal_of) = build_terminals(&customers, &meters);
    Fleet {
        seed: opts.seed,
        start: opts.start_date,
        customers,
        meters,
        terminals,
        terminal_of,
    }
}

/// Which customer index gets which role: special roles spread evenly, the
/// rest normal. With fewer customers than special roles, the later roles are
/// dropped (and so are their planted anomalies).
fn role_layout(n: usize) -> Vec<Role> {
    let mut roles = vec![Role::Normal; n];
    let r = SPECIAL_ROLES.len();
    for (k, role) in SPECIAL_ROLES.iter().enumerate() {
        let idx = if n >= r { k * n / r + (n / r) / 2 } else { k };
        if let Some(slot) = roles.get_mut(idx) {
            *slot = *role;
        }
    }
    roles
}

fn build_customer(opts: &SimOptions, i: usize, role: Role, next_meter: &mut u64) -> SimCustomer {
    let mut rng = Rng::derive(opts.seed, &[TAG_CUSTOMER, i as u64]);
    let spec = role_spec(role).unwrap_or_else(|| random_spec(&mut rng));
    // A few background non-household customers are suspended (暂停).
    let role = if role == Role::Normal && spec.category != Category::Residential && rng.chance(0.03)
    {
        Role::Suspended
    } else {
        role
    };
    let (org_code, city, county) = rng.pick(&COUNTIES, COUNTIES[0]);
    let voltage = voltage_for(spec.category, spec.contract_kva);
    let meters = spec
        .shares
        .iter()
        .map(|share| {
            build_meter(
                &mut rng,
                next_meter,
                spec.contract_kva as f64 * share,
                voltage,
                *share,
            )
        })
        .collect();
    let mut c = SimCustomer {
        index: i,
        id: format!("C{:010}", 100_001 + i as u64),
        name: customer_name(&mut rng, spec.category, spec.shape, city, county),
        org_code,
        category: spec.category,
        contract_kva: spec.contract_kva,
        voltage_kv: voltage,
        role,
        shape: spec.shape,
        load_factor: load_factor(&mut rng, spec.shape),
        tan_phi: tan_phi(&mut rng, spec.category),
        basic_fee_mode: "none",
        capacity_changes: Vec::new(),
        meters,
    };
    c.basic_fee_mode = basic_fee_mode(&mut rng, &c);
    c.capacity_changes = capacity_changes(&mut rng, &c, opts.start_date);
    c
}

/// The fixed make-up of each special role, chosen so its rule is exercised
/// cleanly (e.g. the multi-meter over-capacity customer has two meters, the
/// exact-1.2×C near miss has a multiplier that keeps its valley energy exact).
fn role_spec(role: Role) -> Option<Spec> {
    let s = |category, contract_kva, shares: &[f64], shape| Spec {
        category,
        contract_kva,
        shares: shares.to_vec(),
        shape,
    };
    use Category::*;
    Some(match role {
        Role::Normal | Role::Suspended => return None,
        Role::OverCapSingle => s(LargeIndustry, 400, &[1.0], Shape::DayShift),
        Role::OverCapMulti => s(LargeIndustry, 630, &[0.5, 0.5], Shape::DayShift),
        Role::ValleyExcess => s(LargeIndustry, 800, &[1.0], Shape::DayShift),
        Role::RegisterReversal => s(Residential, 16, &[1.0], Shape::Residential),
        Role::ZeroConsumption => s(GeneralCommerce, 50, &[1.0], Shape::Commerce),
        Role::EnergyDrop => s(GeneralCommerce, 200, &[1.0], Shape::Commerce),
        Role::CoverOpen => s(GeneralCommerce, 100, &[1.0], Shape::DayShift),
        Role::NearOverCapExact => s(LargeIndustry, 400, &[1.0], Shape::DayShift),
        Role::NearOverCapSpike => s(LargeIndustry, 630, &[1.0], Shape::ThreeShift),
        Role::NearDropExact => s(GeneralCommerce, 100, &[1.0], Shape::Commerce),
        Role::NearZeroAlmost => s(Residential, 16, &[1.0], Shape::Residential),
        Role::NearSuspendedZero => s(GeneralCommerce, 200, &[1.0], Shape::DayShift),
        Role::NearCoverEnd => s(Agriculture, 100, &[1.0], Shape::Agriculture),
    })
}

fn random_spec(rng: &mut Rng) -> Spec {
    let roll = rng.unit();
    let (category, shape) = if roll < 0.45 {
        (Category::Residential, Shape::Residential)
    } else if roll < 0.75 {
        let shape = if rng.chance(0.6) {
            Shape::Commerce
        } else {
            Shape::DayShift
        };
        (Category::GeneralCommerce, shape)
    } else if roll < 0.90 {
        let shape = if rng.chance(0.6) {
            Shape::DayShift
        } else {
            Shape::ThreeShift
        };
        (Category::LargeIndustry, shape)
    } else {
        (Category::Agriculture, Shape::Agriculture)
    };
    let contract_kva = match category {
        Category::Residential => 16,
        Category::GeneralCommerce => rng.pick(&[50, 100, 100, 200, 200, 315, 400], 100),
        Category::LargeIndustry => rng.pick(&[315, 400, 630, 800, 1000, 1250, 1600], 630),
        Category::Agriculture => rng.pick(&[50, 100, 200], 100),
    };
    let meters = match category {
        Category::LargeIndustry => rng.pick(&[1, 1, 1, 1, 2, 2, 2, 3], 1),
        Category::GeneralCommerce if contract_kva >= 200 && rng.chance(0.2) => 2,
        _ => 1,
    };
    Spec {
        category,
        contract_kva,
        shares: meter_shares(rng, meters),
        shape,
    }
}

/// How a multi-meter customer's load splits over its meters (one meter per
/// transformer or feeder); the shares sum to 1.
fn meter_shares(rng: &mut Rng, n: usize) -> Vec<f64> {
    let weights: Vec<f64> = (0..n.max(1)).map(|_| rng.range(0.7, 1.3)).collect();
    let sum: f64 = weights.iter().sum();
    weights.iter().map(|w| w / sum).collect()
}

/// Households are single-phase 220 V; up to 200 kVA is supplied at 0.4 kV;
/// larger customers have their own 10 kV transformer.
fn voltage_for(category: Category, contract_kva: i64) -> Voltage {
    if category == Category::Residential {
        Voltage::V220
    } else if contract_kva <= 200 {
        Voltage::V400
    } else {
        Voltage::Kv10
    }
}

/// 综合倍率 from the capacity a meter carries: direct metering for
/// households; otherwise the smallest standard CT carrying 1.2 × the rated
/// current (×5 A secondary), times the 10 kV/100 V PT ratio at 10 kV.
pub(super) fn multiplier(kva: f64, voltage: Voltage) -> i64 {
    const LV_CT: [i64; 14] = [
        150, 200, 300, 400, 500, 600, 750, 800, 1000, 1500, 2000, 2500, 3000, 4000,
    ];
    const HV_CT: [i64; 8] = [10, 15, 20, 30, 40, 50, 75, 100];
    let (cts, kv, pt): (&[i64], f64, i64) = match voltage {
        Voltage::V220 => return 1,
        Voltage::V400 => (&LV_CT, 0.4, 1),
        Voltage::Kv10 => (&HV_CT, 10.0, 100),
    };
    let want = 1.2 * kva / (1.732_050_8 * kv);
    let ct = cts
        .iter()
        .copied()
        .find(|ct| *ct as f64 >= want)
        .or(cts.last().copied())
        .unwrap_or(5);
    ct / 5 * pt
}

fn build_meter(
    rng: &mut Rng,
    next_meter: &mut u64,
    kva: f64,
    voltage: Voltage,
    share: f64,
) -> SimMeter {
    let id = format!("M{:010}", *next_meter);
    *next_meter += 1;
    // Registers start somewhere in a meter's life: 2,000.00 – 50,000.00 kWh.
    let total = 200_000 + rng.below(4_800_000) as i64;
    let sharp = total * 8 / 100;
    let peak = total * 35 / 100;
    let flat = total * 27 / 100;
    let reg0 = [sharp, peak, flat, total - sharp - peak - flat];
    SimMeter {
        id,
        multiplier: multiplier(kva, voltage),
        share,
        reg0,
        q0: total * 3 / 10,
    }
}

fn load_factor(rng: &mut Rng, shape: Shape) -> f64 {
    match shape {
        Shape::Residential => rng.range(0.7, 1.3),
        _ => rng.range(0.65, 1.0),
    }
}

/// tan φ for a power factor of 0.88–0.97 (households 0.95–0.99).
fn tan_phi(rng: &mut Rng, category: Category) -> f64 {
    let pf = if category == Category::Residential {
        rng.range(0.95, 0.99)
    } else {
        rng.range(0.88, 0.97)
    };
    (1.0 - pf * pf).sqrt() / pf
}

fn customer_name(
    rng: &mut Rng,
    category: Category,
    shape: Shape,
    city: &str,
    county: &str,
) -> String {
    let brand = rng.pick(&BRANDS, "宏达");
    match (category, shape) {
        (Category::Residential, _) => {
            format!("{}{}", rng.pick(&SURNAMES, "王"), rng.pick(&GIVEN, "伟"))
        }
        (Category::Agriculture, _) => {
            format!(
                "{}{}村{}组农灌",
                county,
                rng.pick(&VILLAGES, "王庄"),
                1 + rng.below(8)
            )
        }
        (_, Shape::Commerce) => format!("{}{}{}有限公司", city, brand, rng.pick(&SHOPS, "商贸")),
        _ => format!("{}{}{}有限公司", city, brand, rng.pick(&TRADES, "机械制造")),
    }
}

/// Capacity-billed two-part customers, some large ones on demand billing.
fn basic_fee_mode(rng: &mut Rng, c: &SimCustomer) -> &'static str {
    if !c.two_part() {
        "none"
    } else if c.contract_kva >= 1000 && c.role == Role::Normal && rng.chance(0.3) {
        "demand"
    } else {
        "capacity"
    }
}

/// Suspended customers carry an open-ended suspension of their whole
/// capacity; a few others an old, finished one (history, no effect now).
fn capacity_changes(rng: &mut Rng, c: &SimCustomer, start: NaiveDate) -> Vec<Value> {
    let day = |n: i64| (start - Duration::days(n)).to_string();
    if c.suspended() {
        let began = 30 + rng.below(60) as i64;
        vec![json!({"kind": "suspend", "kva": c.contract_kva, "start": day(began), "end": null})]
    } else if c.two_part() && c.role == Role::Normal && rng.chance(0.08) {
        vec![
            json!({"kind": "suspend", "kva": c.contract_kva / 2, "start": day(200), "end": day(140)}),
        ]
    } else {
        Vec::new()
    }
}

/// Meters grouped by county into terminals (concentrators / collection
/// channels) of up to 256 meters, so a load message can carry a full batch.
fn build_terminals(customers: &[SimCustomer], meters: &[MeterRef]) -> (Vec<Terminal>, Vec<usize>) {
    const PER_TERMINAL: usize = 256;
    let mut terminals: Vec<Terminal> = Vec::new();
    let mut terminal_of = vec![0; meters.len()];
    for (org, _, _) in COUNTIES {
        let county = org.rsplit('/').next().unwrap_or(org);
        let in_county = meters
            .iter()
            .enumerate()
            .filter(|(_, r)| customers.get(r.customer).map(|c| c.org_code) == Some(org));
        for (n, (flat, _)) in in_county.enumerate() {
            if n % PER_TERMINAL == 0 {
                terminals.push(Terminal {
                    id: format!("T{}{:02}", county, n / PER_TERMINAL + 1),
                    meters: Vec::new(),
                });
            }
            if let Some(t) = terminals.last_mut() {
                t.meters.push(flat);
                terminal_of[flat] = terminals.len() - 1;
            }
        }
    }
    (terminals, terminal_of)
}

/// `{"customers": [...]}` in the shape of interfaces.md §3.
pub(super) fn archive_json(fleet: &Fleet) -> Value {
    json!({ "customers": fleet.customers.iter().map(customer_json).collect::<Vec<_>>() })
}

fn customer_json(c: &SimCustomer) -> Value {
    let running_kva = if c.suspended() { 0 } else { c.contract_kva };
    json!({
        "customer_id": c.id,
        "name": c.name,
        "org_code": c.org_code,
        "usage_category": c.category.code(),
        "tariff_kind": if c.two_part() { "two_part" } else { "single" },
        "tariff_category": c.category.code(),
        "contract_kva": c.contract_kva,
        "running_kva": running_kva,
        "voltage_kv": c.voltage_kv.json(),
        "pf_standard": pf_standard(c),
        "basic_fee_mode": c.basic_fee_mode,
        "status": if c.suspended() { "suspended" } else { "normal" },
        "meters": c.meters.iter().map(|m| json!({"meter_id": m.id, "multiplier": m.multiplier})).collect::<Vec<_>>(),
        "capacity_changes": c.capacity_changes,
    })
}

/// 力率考核标准 (《功率因数调整电费办法》): 0.90 from 160 kVA, 0.85 from
/// 100 kVA, 0.80 for agriculture; smaller customers are not assessed, and get
/// 0.85 so the field is always a number.
fn pf_standard(c: &SimCustomer) -> f64 {
    match c.category {
        Category::Agriculture if c.contract_kva >= 100 => 0.8,
        Category::Residential => 0.85,
        _ if c.contract_kva >= 160 => 0.9,
        _ => 0.85,
    }
}
