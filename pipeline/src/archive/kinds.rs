//! The closed sets of the archive and billing documents. Each is written
//! in snake_case on the wire, in Redis and in the reference tables, so the
//! stored and SQL forms are the same text the documents carry.

use crate::closed_set::closed_set;

closed_set!(
    /// 两部制 or 单一制 tariff.
    TariffKind { TwoPart => "two_part", Single => "single" }
);

closed_set!(
    /// How the basic fee of a two-part customer is charged: by contract
    /// capacity (按容量), by maximum demand (按需量), or not at all.
    BasicFeeMode { Capacity => "capacity", Demand => "demand", None => "none" }
);

closed_set!(
    /// A customer's account status in the archive.
    CustomerStatus { Normal => "normal", Suspended => "suspended", Closed => "closed" }
);

closed_set!(
    /// A capacity change: 暂停 (suspension) or 减容 (reduction).
    ChangeKind { Suspend => "suspend", Reduce => "reduce" }
);
