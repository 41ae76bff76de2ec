//! Interning of values many rows share (organisations, server names, user agents, role sets):
//! each shard keeps each value once with a use count, and its rows hold 4-byte numbers.

use std::hash::Hash;
use std::sync::Arc;

use hashbrown::HashMap;

use crate::domain::Device;

/// A value a shard keeps its own copy of, so that no two shards share a reference count.
pub(super) trait Local {
    fn local_copy(&self) -> Self;
}

impl Local for Arc<str> {
    fn local_copy(&self) -> Self {
        Arc::from(&**self)
    }
}

impl Local for Arc<Device> {
    fn local_copy(&self) -> Self {
        Arc::new(Device {
            browser: self.browser.as_ref().map(Local::local_copy),
            os: self.os.as_ref().map(Local::local_copy),
            kind: self.kind,
        })
    }
}

impl Local for Arc<[Arc<str>]> {
    fn local_copy(&self) -> Self {
        self.iter().map(Local::local_copy).collect()
    }
}

/// Interns values shared by many rows: each is kept once, with a count of the rows that use
/// it, and rows hold its number. Guarded by its shard's lock.
pub(super) struct Interner<T> {
    index: HashMap<T, u32>,
    values: Vec<Option<(T, u32)>>,
    free: Vec<u32>,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner {
            index: HashMap::default(),
            values: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Hash + Eq + Clone + Local> Interner<T> {
    pub(super) fn acquire(&mut self, value: &T) -> u32 {
        if let Some(&n) = self.index.get(value) {
            if let Some((_, uses)) = &mut self.values[n as usize] {
                *uses += 1;
            }
            return n;
        }
        let value = value.local_copy();
        let entry = Some((value.clone(), 1));
        let n = match self.free.pop() {
            Some(n) => {
                self.values[n as usize] = entry;
                n
            }
            None => {
                self.values.push(entry);
                (self.values.len() - 1) as u32
            }
        };
        self.index.insert(value, n);
        n
    }

    pub(super) fn release(&mut self, n: u32) {
        let Some(Some((value, uses))) = self.values.get_mut(n as usize) else {
            return;
        };
        *uses -= 1;
        if *uses == 0 {
            self.index.remove(value);
            self.values[n as usize] = None;
            self.free.push(n);
        }
    }

    pub(super) fn get(&self, n: u32) -> &T {
        &self.values[n as usize]
            .as_ref()
            .expect("rows refer only to values in use")
            .0
    }

    pub(super) fn find<Q>(&self, value: &Q) -> Option<u32>
    where
        T: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.get(value).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interned_values_are_freed_with_their_last_use() {
        let mut interner: Interner<Arc<str>> = Interner::default();
        let acme: Arc<str> = "Acme".into();
        let a = interner.acquire(&acme);
        assert_eq!(interner.acquire(&acme), a);
        assert!(
            !Arc::ptr_eq(interner.get(a), &acme),
            "the interner keeps its own copy"
        );
        interner.release(a);
        assert_eq!(interner.find("Acme"), Some(a));
        interner.release(a);
        assert_eq!(interner.find("Acme"), None);
        assert_eq!(
            interner.acquire(&"Globex".into()),
            a,
            "the number is reused"
        );
    }
}
