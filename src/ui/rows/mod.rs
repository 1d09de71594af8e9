//! The list pages' rows, rendered once per watch event and kept in an index
//! (pure): in page order, by creator (a user's own rows, the admin's user
//! filter) and by namespace; the values pages filter on (creators, a
//! Deployment's template) are counted as rows come and go. A page is a
//! range of it: [`page_of`] takes the matching rows and keeps only the
//! page's, so a request costs a walk over references, not a rebuild.
//!
//! ```text
//!   watch event ──▶ Row (HTML rendered once) ──▶ Index
//!                                                 ├─ rows:       Order ─▶ Arc<Row>   (page order)
//!                                                 ├─ by_creator: user ─▶ Order ─▶ Arc<Row>
//!                                                 ├─ by_namespace: namespace ─▶ Order ─▶ Arc<Row>
//!                                                 ├─ orders:     (namespace, name) ─▶ Order
//!                                                 └─ facets:     value ─▶ rows having it
//! ```

pub mod kinds;

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

/// An object's `(namespace, name)`.
pub type ObjectKey = (String, String);

/// Rows per page of a list.
pub const PAGE_SIZE: usize = 200;

/// What the index needs to know of a row.
pub trait Row {
    /// Where the row stands on a page; unique per object.
    type Order: Ord + Clone;
    /// The object's `(namespace, name)`.
    fn key(&self) -> &ObjectKey;
    /// Its place in page order.
    fn order(&self) -> Self::Order;
    /// Who created the object (empty: unknown).
    fn creator(&self) -> &str;
    /// A second value pages filter on and offer a choice of (a Deployment's template), if any.
    fn facet(&self) -> Option<&str> {
        None
    }
    /// Its HTML (rendered and escaped by its row template), with the creator column for an admin.
    fn html(&self, admin: bool) -> &str;
}

/// Rows in page order, grouped by a string (creator, namespace).
type Groups<R> = BTreeMap<String, BTreeMap<<R as Row>::Order, Arc<R>>>;

fn put<R: Row>(groups: &mut Groups<R>, group: &str, order: &R::Order, row: &Arc<R>) {
    groups
        .entry(group.to_string())
        .or_default()
        .insert(order.clone(), row.clone());
}

fn take<R: Row>(groups: &mut Groups<R>, group: &str, order: &R::Order) {
    if let Some(rows) = groups.get_mut(group) {
        rows.remove(order);
        if rows.is_empty() {
            groups.remove(group);
        }
    }
}

/// Rows in page order, by creator, by namespace and by object.
pub struct Index<R: Row> {
    rows: BTreeMap<R::Order, Arc<R>>,
    by_creator: Groups<R>,
    by_namespace: Groups<R>,
    orders: HashMap<ObjectKey, R::Order>,
    facets: BTreeMap<String, usize>,
}

impl<R: Row> Default for Index<R> {
    fn default() -> Self {
        Index {
            rows: BTreeMap::new(),
            by_creator: BTreeMap::new(),
            by_namespace: BTreeMap::new(),
            orders: HashMap::new(),
            facets: BTreeMap::new(),
        }
    }
}

impl<R: Row> Index<R> {
    /// An index of exactly these rows (a relist); a later row of the same object wins.
    pub fn of(rows: impl IntoIterator<Item = R>) -> Self {
        let mut index = Index::default();
        for r in rows {
            index.upsert(r);
        }
        index
    }

    /// Adds a row, or replaces the row of the same object.
    pub fn upsert(&mut self, row: R) {
        self.remove(&row.key().clone());
        let (order, row) = (row.order(), Arc::new(row));
        self.orders.insert(row.key().clone(), order.clone());
        if let Some(f) = row.facet() {
            *self.facets.entry(f.to_string()).or_default() += 1;
        }
        put(&mut self.by_creator, row.creator(), &order, &row);
        put(&mut self.by_namespace, &row.key().0, &order, &row);
        self.rows.insert(order, row);
    }

    /// Removes the row of an object, if there is one.
    pub fn remove(&mut self, key: &ObjectKey) {
        let Some(order) = self.orders.remove(key) else { return };
        let Some(row) = self.rows.remove(&order) else { return };
        take(&mut self.by_creator, row.creator(), &order);
        take(&mut self.by_namespace, &row.key().0, &order);
        if let Some(f) = row.facet()
            && let Some(n) = self.facets.get_mut(f)
        {
            *n -= 1;
            if *n == 0 {
                self.facets.remove(f);
            }
        }
    }

    /// Every row in page order, or only `creator`'s.
    pub fn rows<'a>(&'a self, creator: Option<&str>) -> Box<dyn Iterator<Item = &'a Arc<R>> + 'a> {
        match creator {
            None => Box::new(self.rows.values()),
            Some(c) => Box::new(self.by_creator.get(c).into_iter().flat_map(|m| m.values())),
        }
    }

    /// The rows of one namespace, in page order.
    pub fn in_namespace<'a>(&'a self, namespace: &str) -> impl Iterator<Item = &'a Arc<R>> + 'a {
        self.by_namespace.get(namespace).into_iter().flat_map(|m| m.values())
    }

    /// The namespaces holding any row.
    pub fn namespaces(&self) -> std::collections::BTreeSet<String> {
        self.by_namespace.keys().cloned().collect()
    }

    /// The namespaces holding `creator`'s objects.
    pub fn namespaces_of(&self, creator: &str) -> std::collections::BTreeSet<String> {
        let mine: std::collections::BTreeSet<&str> = self.rows(Some(creator)).map(|r| r.key().0.as_str()).collect();
        mine.into_iter().map(str::to_string).collect()
    }

    /// Every creator, sorted.
    pub fn creators(&self) -> impl Iterator<Item = &str> {
        self.by_creator.keys().map(String::as_str)
    }

    /// Every facet value some row has, sorted.
    pub fn facets(&self) -> impl Iterator<Item = &str> {
        self.facets.keys().map(String::as_str)
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One page of a list.
#[derive(Debug, PartialEq)]
pub struct Page<T> {
    /// The page's rows.
    pub rows: Vec<T>,
    /// This page's number, from 1.
    pub page: usize,
    /// How many pages there are (at least 1).
    pub pages: usize,
    /// How many rows match in all.
    pub total: usize,
    /// The number of the page's first row, from 1.
    pub first: usize,
}

impl<T> Page<T> {
    /// The same page with its rows made into something else.
    pub fn map<U>(self, f: impl FnOnce(Vec<T>) -> Vec<U>) -> Page<U> {
        Page {
            rows: f(self.rows),
            page: self.page,
            pages: self.pages,
            total: self.total,
            first: self.first,
        }
    }
}

/// The page `page` (from 1; out of range: the nearest) of the matching
/// rows. Walks them once to count; keeps only the page's (a second walk
/// when the page is past the end).
pub fn page_of<T, I>(matching: impl Fn() -> I, page: Option<usize>) -> Page<T>
where
    I: Iterator<Item = T>,
{
    let wanted = page.unwrap_or(1).max(1);
    let start = (wanted - 1) * PAGE_SIZE;
    let mut total = 0;
    let mut rows = Vec::with_capacity(PAGE_SIZE);
    for r in matching() {
        if total >= start && total < start + PAGE_SIZE {
            rows.push(r);
        }
        total += 1;
    }
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = wanted.min(pages);
    if page != wanted {
        rows = matching().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE).collect();
    }
    Page {
        rows,
        page,
        pages,
        total,
        first: (page - 1) * PAGE_SIZE + 1,
    }
}

/// A page's rows as values the page template writes as they are.
pub fn html<R: Row>(rows: &[&Arc<R>], admin: bool) -> Vec<minijinja::Value> {
    rows.iter()
        .map(|r| minijinja::Value::from_safe_string(r.html(admin).to_string()))
        .collect()
}

#[cfg(test)]
mod tests;
