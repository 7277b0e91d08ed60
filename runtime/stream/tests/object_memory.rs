//! An object frees what its values own, however a value leaves it: the object dropped,
//! a field dropped by a map's projection, overwritten, or taken out. (`Obj` drops its
//! fields itself, and lets go of those that own nothing without dropping them; one that
//! owns memory let go so would leak, which only an allocator that counts can see.)

use capstan_stream::Val;
use capstan_stream::value::FieldName;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

/// The system allocator, counting what it hands out and takes back.
#[global_allocator]
static ALLOCATOR: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// An object whose every kind of value owns memory: a long string, an array, a nested
/// object (with a long string of its own), beside plain ones.
fn owning() -> Val {
    Val::from_json(serde_json::json!({
        "arr": [1, "a string long enough for the heap", {"x": [2, 3]}],
        "long": "another string long enough to live on the heap",
        "n": 7,
        "nested": {"deep": {"text": "a third string long enough for the heap"}},
        "short": "inline",
    }))
}

fn names(list: &[&str]) -> Vec<FieldName> {
    list.iter().map(|n| FieldName::new(*n)).collect()
}

#[test]
fn every_way_a_value_leaves_an_object_frees_what_it_owns() {
    // Made before counting: what the operations below allocate and keep would show.
    let keep_n = names(&["n"]);
    let keep_all_set_long = names(&["arr", "long", "nested", "zz"]);
    let kept_all = [true, false, true, true];
    let region = Region::new(ALLOCATOR);
    for _ in 0..1_000 {
        // Dropped whole, nested objects and arrays with it.
        drop(owning());

        // A projection that drops every owning field.
        let Val::Obj(mut o) = owning() else {
            unreachable!()
        };
        o.project(&keep_n, &[true], std::iter::empty());
        drop(o);

        // A projection that keeps some, overwrites one owning value with a computed
        // one that owns memory too, and adds a missing field.
        let Val::Obj(mut o) = owning() else {
            unreachable!()
        };
        o.project(
            &keep_all_set_long,
            &kept_all,
            std::iter::once(Val::from("a computed string long enough for the heap")),
        );
        drop(o);

        // Overwritten by insert, taken out by remove (the taken value dropped here).
        let Val::Obj(mut o) = owning() else {
            unreachable!()
        };
        o.insert(
            "long",
            Val::from("a replacement string long enough for the heap"),
        );
        o.insert("added", owning());
        drop(o.remove("nested"));
        drop(o.remove("added"));
        drop(o.clone());
        drop(o);
    }
    let change = region.change();
    // A reallocation's growth counts in `bytes_allocated` already.
    let live = change.bytes_allocated as isize - change.bytes_deallocated as isize;
    assert!(change.allocations > 10_000, "{change:?}");
    assert_eq!(live, 0, "bytes left allocated by 1,000 rounds: {change:?}");
    assert_eq!(change.allocations, change.deallocations, "{change:?}");
}
