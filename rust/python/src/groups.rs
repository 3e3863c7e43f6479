//! `node.groups` and a group member's handle for Python.
//!
//! Only conversion: the join options dict (`mosaik/groups.py` checked it)
//! into the core's `JoinOptions`, commands and results as bytes (the
//! Python side owns the codecs), the member's status as a frozen value,
//! and the work of a Python state machine handed over one batch at a time.

use std::sync::Mutex;

use bytes::Bytes;
use mosaik_core::{
    Digest, Node,
    groups::{
        ConsensusConfig, Group, GroupKey, JoinOptions, MachineSpec, ReplayConfig, RoleKind, SafetyRules,
        Status, Work,
    },
    tickets::Validators,
};
use pyo3::{
    prelude::*,
    types::{PyBytes, PyFrozenSet, PyList},
};
use tokio::sync::oneshot;

use crate::{
    convert::seconds,
    errors::{Closed, py_err},
    node::check_open,
    runtime,
    tickets::validators_from,
};

/// A `mosaik.ConsensusConfig`, read by attribute name.
#[derive(FromPyObject)]
pub struct ConsensusOptions {
    #[pyo3(attribute)]
    heartbeat_interval: f64,
    #[pyo3(attribute)]
    heartbeat_jitter: f64,
    #[pyo3(attribute)]
    max_missed_heartbeats: u32,
    #[pyo3(attribute)]
    election_timeout: f64,
    #[pyo3(attribute)]
    election_timeout_jitter: f64,
    #[pyo3(attribute)]
    bootstrap_delay: f64,
    #[pyo3(attribute)]
    forward_timeout: f64,
    #[pyo3(attribute)]
    query_timeout: f64,
    #[pyo3(attribute)]
    quorum: Option<usize>,
    #[pyo3(attribute)]
    observer: bool,
    #[pyo3(attribute)]
    readers_abstain: bool,
}

impl ConsensusOptions {
    fn into_config(self) -> PyResult<ConsensusConfig> {
        Ok(ConsensusConfig {
            heartbeat_interval: seconds("consensus.heartbeat_interval", self.heartbeat_interval)?,
            heartbeat_jitter: seconds("consensus.heartbeat_jitter", self.heartbeat_jitter)?,
            max_missed_heartbeats: self.max_missed_heartbeats,
            election_timeout: seconds("consensus.election_timeout", self.election_timeout)?,
            election_timeout_jitter: seconds(
                "consensus.election_timeout_jitter",
                self.election_timeout_jitter,
            )?,
            bootstrap_delay: seconds("consensus.bootstrap_delay", self.bootstrap_delay)?,
            forward_timeout: seconds("consensus.forward_timeout", self.forward_timeout)?,
            query_timeout: seconds("consensus.query_timeout", self.query_timeout)?,
            quorum: self.quorum,
            observer: self.observer,
            readers_abstain: self.readers_abstain,
        })
    }
}

/// What `net.groups.join(...)` passes besides the key.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct GroupOptions {
    /// The machine's signature (32 bytes) and Rust type name; `None` for NoOp.
    machine: Option<([u8; 32], String)>,
    consensus: ConsensusOptions,
    require_ticket: Py<PyAny>,
}

/// The core's defaults, as `mosaik.ConsensusConfig` shows them.
pub fn defaults(defaults: &Bound<'_, pyo3::types::PyDict>) -> PyResult<()> {
    let config = ConsensusConfig::default();
    let durations = [
        ("heartbeat_interval", config.heartbeat_interval),
        ("heartbeat_jitter", config.heartbeat_jitter),
        ("election_timeout", config.election_timeout),
        ("election_timeout_jitter", config.election_timeout_jitter),
        ("bootstrap_delay", config.bootstrap_delay),
        ("forward_timeout", config.forward_timeout),
        ("query_timeout", config.query_timeout),
    ];
    for (name, value) in durations {
        defaults.set_item(format!("consensus_{name}"), value.as_secs_f64())?;
    }
    defaults.set_item("consensus_max_missed_heartbeats", config.max_missed_heartbeats)?;
    defaults.set_item("noop_type_name", mosaik_core::groups::machine::NOOP_TYPE_NAME)?;
    Ok(())
}

#[pyclass(module = "mosaik._mosaik", name = "Groups", frozen)]
pub struct PyGroups {
    node: Node,
}

impl PyGroups {
    pub fn new(node: Node) -> Self {
        Self { node }
    }
}

#[pymethods]
impl PyGroups {
    /// Bonds refused or ended by this node, by reason.
    fn rejections(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.node.groups().rejections().counts()
    }

    /// Starts a member of the group of `key` (mosaik's `from_secret` rule).
    fn join(&self, py: Python<'_>, key: &str, options: GroupOptions) -> PyResult<PyGroup> {
        check_open(&self.node)?;
        let (machine, external_machine) = match options.machine {
            Some((signature, type_name)) => (
                MachineSpec {
                    signature: Digest::from_bytes(signature),
                    type_name,
                },
                true,
            ),
            None => (MachineSpec::noop(), false),
        };
        let tickets = validators_from(options.require_ticket.bind(py), "require_ticket")?;
        let options = JoinOptions {
            key: GroupKey::from_secret(key),
            machine,
            consensus: options.consensus.into_config()?,
            replay: ReplayConfig::default(),
            rules: SafetyRules::default(),
            external_machine,
            tickets: Validators::from(tickets),
        };
        let group = runtime::entered(|| self.node.groups().join(options))?.map_err(py_err)?;
        Ok(PyGroup {
            group_id: group.id().to_hex(),
            group,
        })
    }
}

/// A member's view of its group at one moment.
#[pyclass(module = "mosaik._mosaik", name = "GroupStatus", frozen, eq)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    status: Status,
}

#[pymethods]
impl GroupStatus {
    #[getter]
    fn leader(&self) -> Option<String> {
        self.status.leader.map(|l| l.to_string())
    }

    #[getter]
    fn is_leader(&self) -> bool {
        self.status.role == RoleKind::Leader
    }

    #[getter]
    fn is_online(&self) -> bool {
        self.status.online
    }

    #[getter]
    fn term(&self) -> u64 {
        self.status.term
    }

    #[getter]
    fn role(&self) -> &'static str {
        match self.status.role {
            RoleKind::Follower => "follower",
            RoleKind::Candidate => "candidate",
            RoleKind::Leader => "leader",
        }
    }

    #[getter]
    fn committed(&self) -> u64 {
        self.status.committed
    }

    #[getter]
    fn log_position(&self) -> (u64, u64) {
        (self.status.log_position.term, self.status.log_position.index)
    }

    #[getter]
    fn bonds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyFrozenSet>> {
        PyFrozenSet::new(py, self.status.bonds.iter().map(|b| b.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "GroupStatus(role={:?}, term={}, leader={:?}, committed={}, bonds={})",
            self.role(),
            self.status.term,
            self.leader().map(|l| l[..10].to_owned()),
            self.status.committed,
            self.status.bonds.len()
        )
    }
}

/// A strong query the local Python machine must answer.
#[pyclass(module = "mosaik._mosaik", name = "QueryWork", frozen)]
pub struct QueryWork {
    #[pyo3(get)]
    query: Py<PyBytes>,
    #[pyo3(get)]
    at: u64,
    reply: Mutex<Option<oneshot::Sender<Bytes>>>,
}

#[pymethods]
impl QueryWork {
    /// Answers with the encoded result; `None` leaves the asker to time out.
    fn answer(&self, result: Option<&[u8]>) {
        if let Some(reply) = self.reply.lock().expect("reply").take()
            && let Some(result) = result
        {
            let _ = reply.send(Bytes::copy_from_slice(result));
        }
    }
}

#[pyclass(module = "mosaik._mosaik", name = "Group", frozen)]
pub struct PyGroup {
    #[pyo3(get)]
    group_id: String,
    group: Group,
}

/// Work for the Python machine, made into Python objects where the GIL is
/// held anyway (never on a runtime worker).
struct NextWork(Work);

impl<'py> IntoPyObject<'py> for NextWork {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self.0 {
            Work::Apply(entries) => {
                let items = entries
                    .into_iter()
                    .map(|(index, term, command)| (index, term, PyBytes::new(py, &command)));
                PyList::new(py, items)?.into_any()
            }
            Work::Query(task) => Bound::new(
                py,
                QueryWork {
                    query: PyBytes::new(py, &task.query).unbind(),
                    at: task.at,
                    reply: Mutex::new(Some(task.reply)),
                },
            )?
            .into_any(),
        })
    }
}

fn commands_of(commands: Vec<Vec<u8>>) -> Vec<Bytes> {
    commands.into_iter().map(Bytes::from).collect()
}

impl PyGroup {
    /// `feed` or, with `applied`, `execute`, as (first, last) index.
    fn propose<'py>(
        &self,
        py: Python<'py>,
        commands: Vec<Vec<u8>>,
        applied: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let group = self.group.clone();
        let commands = commands_of(commands);
        runtime::into_py_future(py, async move {
            let range = if applied {
                group.execute(commands).await
            } else {
                group.feed(commands).await
            };
            let range = range.map_err(py_err)?;
            Ok((range.start, range.end))
        })
    }
}

#[pymethods]
impl PyGroup {
    fn status(&self) -> GroupStatus {
        GroupStatus {
            status: self.group.status(),
        }
    }

    /// Resolves with the status once it differs from `seen`.
    fn status_changed<'py>(
        &self,
        py: Python<'py>,
        seen: PyRef<'py, GroupStatus>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let seen = seen.clone();
        let mut status = self.group.watch_status();
        let group = self.group.clone();
        runtime::into_py_future(py, async move {
            let closed = || Closed::new_err("the group is closed");
            if group.is_closed() {
                return Err(closed());
            }
            tokio::select! {
                changed = status.wait_for(|s| *s != seen.status) => match changed {
                    Ok(status) => Ok(GroupStatus { status: status.clone() }),
                    Err(_) => Err(closed()),
                },
                _ = group.closed() => Err(closed()),
            }
        })
    }

    #[getter]
    fn applied(&self) -> u64 {
        self.group.applied()
    }

    #[getter]
    fn is_closed(&self) -> bool {
        self.group.is_closed()
    }

    /// Resolves to (first, last) index once the leader has taken them.
    fn feed<'py>(&self, py: Python<'py>, commands: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        self.propose(py, commands, false)
    }

    /// Resolves to (first, last) index once committed and applied here.
    fn execute<'py>(&self, py: Python<'py>, commands: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        self.propose(py, commands, true)
    }

    /// Resolves to (first, last, term) once the leader has taken them: the
    /// entries hold that term unless that leader lost them.
    fn assign<'py>(&self, py: Python<'py>, commands: Vec<Vec<u8>>) -> PyResult<Bound<'py, PyAny>> {
        let group = self.group.clone();
        let commands = commands_of(commands);
        runtime::into_py_future(py, async move {
            let assignment = group.propose(commands).await.map_err(py_err)?;
            Ok((assignment.range.start, assignment.range.end, assignment.term))
        })
    }

    /// The term of the entry at `index` in this member's log.
    fn term_at(&self, index: u64) -> Option<u64> {
        self.group.term_at(index)
    }

    /// A linearizable query: resolves to (result bytes, index it reflects).
    fn query<'py>(&self, py: Python<'py>, query: Vec<u8>) -> PyResult<Bound<'py, PyAny>> {
        let group = self.group.clone();
        runtime::into_py_future(py, async move {
            let (result, at) = group.query_strong(Bytes::from(query)).await.map_err(py_err)?;
            Ok((result.to_vec(), at))
        })
    }

    /// The next work for the Python machine, once there is some: a list of
    /// (index, term, command) or a `QueryWork`.
    fn next_work<'py>(&self, py: Python<'py>, applied: u64, max: usize) -> PyResult<Bound<'py, PyAny>> {
        let group = self.group.clone();
        runtime::into_py_future(py, async move {
            let work = group.next_work(applied, max).await.map_err(py_err)?;
            Ok(NextWork(work))
        })
    }

    /// Leaves the group (goodbye to every bond); idempotent.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let group = self.group.clone();
        runtime::until_done(py, async move { group.close().await })
    }

    fn __repr__(&self) -> String {
        format!(
            "<Group {} {}>",
            &self.group_id[..10],
            if self.group.is_closed() { "closed" } else { "open" }
        )
    }
}
