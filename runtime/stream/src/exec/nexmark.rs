//! Nexmark's bids, as its reference generators (Beam's, Flink's) make them with the
//! default configuration: which auction a bid is for, who bids, and the price.
//!
//! Why the distribution matters: a windowed query per auction costs what the number of
//! auctions bid on in a window makes it cost (one result row each). Nexmark's bids go to
//! the auctions in flight, a hundred or so at a time, half of them to one hot auction;
//! bids spread over a hundred thousand auction ids made four times as many rows per
//! event as Nexmark does, and `make bench` measured that, not Nexmark.
//!
//! A bid is a pure function of its index, so a generator's partition resumes from its
//! position and every run makes the same bids.

use super::connector::mix;

/// Nexmark's events come in epochs of 50: one person, three auctions, then 46 bids.
const EPOCH: u64 = 50;
const PERSONS: u64 = 1;
const AUCTIONS: u64 = 3;
const BIDS: u64 = EPOCH - PERSONS - AUCTIONS;
/// The first auction's and the first person's id.
const FIRST_ID: u64 = 1000;
/// Auctions likely still open (`numInFlightAuctions`) and people who bid
/// (`numActivePeople`).
const IN_FLIGHT_AUCTIONS: u64 = 100;
const ACTIVE_PEOPLE: u64 = 1000;
/// Ids not made yet that a bid may name all the same (`AUCTION_ID_LEAD`,
/// `PERSON_ID_LEAD`).
const ID_LEAD: u64 = 10;
/// One bid in `HOT_AUCTION_RATIO` goes to any auction in flight, the others to the hot
/// auction; one in `HOT_BIDDER_RATIO` is by any active person, the others by the hot
/// bidder (`hotAuctionRatio`, `hotBiddersRatio`).
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_BIDDER_RATIO: u64 = 4;
/// The hot auction is the first of the latest hundred auctions, the hot bidder the second
/// of the latest hundred people (so that hot bidders and hot sellers differ).
const HOT_BATCH: u64 = 100;
/// Seeds of a bid's two draws: one for its choices and ids, one for its price.
const SEEDS: [u64; 2] = [0xB1D5, 0x009C_1CE5];

/// One bid: its auction and bidder ids, its price in cents, and which of four channels
/// it came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bid {
    /// The auction's id.
    pub auction: u64,
    /// The bidder's (a person's) id.
    pub bidder: u64,
    /// Cents, from 1 dollar to a million, log-uniform (`PriceGenerator`).
    pub price: u64,
    /// 0 to 3.
    pub channel: usize,
}

/// Bid number `i` (from 0) of the stream of bids.
///
/// Made for speed (a generator's bid is CPU the benchmark's pipeline does not get): two
/// draws, not one per choice, and the choices without branches.
pub fn bid(i: u64) -> Bid {
    // Where the bid is in Nexmark's stream of people, auctions and bids.
    let epoch = i / BIDS;
    let last_auction = epoch * AUCTIONS + AUCTIONS - 1;
    let last_person = epoch * PERSONS + PERSONS - 1;
    let [h, p] = SEEDS.map(|s| mix(i ^ s));
    // Bits 0 to 4 choose; the ids come from the top bits, and from bits 5 to 39.
    let first = last_auction.saturating_sub(IN_FLIGHT_AUCTIONS);
    let cold = first + below(h, last_auction - first + 1 + ID_LEAD);
    let hot = last_auction / HOT_BATCH * HOT_BATCH;
    let auction = pick(h % HOT_AUCTION_RATIO > 0, hot, cold);
    let people = last_person + 1;
    let active = people.min(ACTIVE_PEOPLE);
    let cold = people - active + below(h << 24, active + ID_LEAD);
    let hot = last_person / HOT_BATCH * HOT_BATCH + 1;
    let bidder = pick((h >> 1) % HOT_BIDDER_RATIO > 0, hot, cold);
    Bid {
        auction: FIRST_ID + auction,
        bidder: FIRST_ID + bidder,
        price: price(p),
        channel: ((h >> 3) % 4) as usize,
    }
}

/// `a` if `yes`, else `b`, by arithmetic: the compiler made a branch of an `if`, and
/// one on a coin toss is mispredicted half the time.
fn pick(yes: bool, a: u64, b: u64) -> u64 {
    b ^ ((a ^ b) & u64::from(yes).wrapping_neg())
}

/// A number below `n` from the random bits `x`: their top ones, scaled, not `x % n`,
/// which is a division of some forty cycles.
fn below(x: u64, n: u64) -> u64 {
    ((u128::from(x) * u128::from(n)) >> 64) as u64
}

/// Nexmark's price: `round(100 × 10^(6u))` cents, `u` uniform in [0, 1) (`PriceGenerator`),
/// here `u` = the top 53 bits of `bits` over 2^53.
///
/// Not by libm's `pow` (126 instructions, half a bid's), nor by a long series (a chain of
/// dependent multiplications that took 43 ns a bid): 10^(6u) is a power from
/// [`COARSE`], times one from [`FINE`], times e^y for the small rest y, by three terms.
fn price(bits: u64) -> u64 {
    let coarse = (bits >> 58) as usize;
    let fine = ((bits >> 52) & 63) as usize;
    let rest = ((bits >> 11) & ((1 << 41) - 1)) as f64 / (1u64 << 41) as f64;
    let y = rest * STEP;
    let e = 1.0 + y * (1.0 + y * 0.5 * (1.0 + y * (1.0 / 3.0)));
    // Rounded by adding a half (the price is positive): `round` is a call into libm.
    (100.0 * COARSE[coarse] * FINE[fine] * e + 0.5) as u64
}

/// ln of the ratio between two neighbours of [`FINE`]: 6 ln 10 / 4096, about 0.0034 (the
/// first term the price's series leaves out is below 10^-11 of it).
const STEP: f64 = 6.0 * std::f64::consts::LN_10 / 4096.0;

/// e^(k × STEP) for k from 0 to 63.
static FINE: [f64; 64] = powers(exp_small(STEP));

/// e^(64 k × STEP) = 10^(6k/64) for k from 0 to 63.
static COARSE: [f64; 64] = powers(FINE[63] * exp_small(STEP));

/// `ratio`^k for k from 0 to 63 (each a product of at most 63 factors: within some
/// 10^-14 of exact).
const fn powers(ratio: f64) -> [f64; 64] {
    let mut table = [1.0; 64];
    let mut k = 1;
    while k < 64 {
        table[k] = table[k - 1] * ratio;
        k += 1;
    }
    table
}

/// e^y for 0 ≤ y ≤ [`STEP`], to the precision of an `f64`: the series to y^6/6!.
const fn exp_small(y: f64) -> f64 {
    let mut sum = 1.0;
    let mut n = 6;
    while n > 0 {
        sum = 1.0 + y / n as f64 * sum;
        n -= 1;
    }
    sum
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Over 100,000 bids (10 s of Nexmark's default event time), the auctions are
    /// Nexmark's: half the bids on the hot one, the others on auctions made at most a
    /// hundred before or ten after the latest; some six thousand auctions in all, not a
    /// hundred thousand. Prices stay in Nexmark's range, every channel is used.
    #[test]
    fn bids_are_spread_over_auctions_as_nexmarks_are() {
        let bids: Vec<Bid> = (0..100_000).map(bid).collect();
        let mut hot = 0;
        for (i, b) in (0u64..).zip(&bids) {
            let latest = FIRST_ID + (i / BIDS) * AUCTIONS + AUCTIONS - 1;
            let hot_one = FIRST_ID + (latest - FIRST_ID) / HOT_BATCH * HOT_BATCH;
            hot += u64::from(b.auction == hot_one);
            assert!(b.auction + IN_FLIGHT_AUCTIONS >= latest, "{i}: {b:?}");
            assert!(b.auction <= latest + ID_LEAD, "{i}: {b:?}");
            assert!((100..=100_000_000).contains(&b.price), "{i}: {b:?}");
            assert!(b.bidder >= FIRST_ID && b.bidder <= FIRST_ID + i / BIDS + ID_LEAD);
        }
        assert!(
            (49_000..=51_500).contains(&hot),
            "{hot} bids on the hot auction"
        );
        let auctions: HashSet<u64> = bids.iter().map(|b| b.auction).collect();
        assert!(
            (6_000..=7_000).contains(&auctions.len()),
            "{} auctions",
            auctions.len()
        );
        let channels: HashSet<usize> = bids.iter().map(|b| b.channel).collect();
        assert_eq!(channels.len(), 4);
        // Log-uniform: as many prices under $100 as from $100 to $10,000.
        let cheap = bids.iter().filter(|b| b.price < 10_000).count();
        assert!(
            (31_000..=35_500).contains(&cheap),
            "{cheap} bids under $100"
        );
    }

    /// The price by table and series is libm's `round(100 × 10^(6u))`, but for a cent
    /// where the exact value is within a rounding error of half a cent.
    #[test]
    fn a_price_is_what_pow_makes_it() {
        let mut off = 0;
        for i in 0..200_000u64 {
            let bits = mix(i);
            let u = (bits >> 11) as f64 / (1u64 << 53) as f64;
            let exact = (10f64.powf(u * 6.0) * 100.0).round() as u64;
            let p = price(bits);
            assert!(p.abs_diff(exact) <= 1, "{bits:x}: {p} against {exact}");
            off += usize::from(p != exact);
        }
        assert!(off <= 10, "{off} prices a cent off");
        assert_eq!(price(0), 100);
        assert_eq!(price(u64::MAX), 100_000_000);
    }
}
