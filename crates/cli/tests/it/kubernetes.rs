//! The Kubernetes manifests under `deploy/kubernetes/`: the capture
//! Deployment and Service, the sharded replay Job and the seal Job fit the
//! binary and one another. No cluster runs in CI, so these tests read the
//! files and ask the real binary about its subcommands and flags (`--help`),
//! as `stack.rs` does for `docker-compose.yml`: renaming a flag that a
//! manifest passes makes them fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml::Value;
use tape_session::WriterId;

use crate::stack::{help_mentions, option, variable_constants};
use crate::tape;

/// The directory of the manifests, relative to the repository.
const MANIFESTS: &str = "deploy/kubernetes";
/// The variable Kubernetes sets in every pod of an Indexed Job.
const JOB_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";
/// The standard OTLP ports, which the Service offers.
const OTLP_GRPC_PORT: u64 = 4317;
const OTLP_HTTP_PORT: u64 = 4318;
/// Characters a ReplicaSet adds to a Deployment's name for its pods' names:
/// `-`, the pod template hash (at most 10), `-`, 5 random characters.
const POD_NAME_SUFFIX: &str = "-5d8f7c9b4d-x7k2p";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One object of a manifest file.
#[derive(Debug, Clone)]
struct Object {
    file: String,
    value: Value,
}

impl Object {
    fn kind(&self) -> &str {
        self.str_at(&["kind"]).unwrap_or_else(|| panic!("{}: an object without kind", self.file))
    }

    fn name(&self) -> &str {
        self.str_at(&["metadata", "name"]).unwrap_or_else(|| panic!("{}: a {} without name", self.file, self.kind()))
    }

    fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.value, |value, key| value.get(*key))
    }

    fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path).and_then(Value::as_str)
    }

    fn u64_at(&self, path: &[&str]) -> Option<u64> {
        self.at(path).and_then(Value::as_u64)
    }

    fn describe(&self) -> String {
        format!("{} {} ({})", self.kind(), self.name(), self.file)
    }
}

/// Every object of every `*.yaml` file of the directory, in file order.
fn manifests() -> Vec<Object> {
    let dir = repo().join(MANIFESTS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "yaml"))
        .collect();
    files.sort();
    let mut objects = Vec::new();
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document).unwrap_or_else(|error| panic!("{file}: {error}"));
            if !value.is_null() {
                objects.push(Object { file: file.clone(), value });
            }
        }
    }
    assert!(objects.len() >= 6, "too few objects in {MANIFESTS}: {objects:?}");
    objects
}

fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> &'a Object {
    objects
        .iter()
        .find(|object| object.kind() == kind && object.name() == name)
        .unwrap_or_else(|| panic!("{MANIFESTS} has no {kind} {name}"))
}

fn only<'a>(objects: &'a [Object], kind: &str, predicate: impl Fn(&Object) -> bool) -> &'a Object {
    let found: Vec<&Object> = objects.iter().filter(|object| object.kind() == kind && predicate(object)).collect();
    let [one] = found.as_slice() else { panic!("expected one such {kind}, found {found:?}") };
    one
}

/// A container of a Deployment's or a Job's pod template (init containers
/// included).
#[derive(Debug)]
struct Container<'a> {
    owner: &'a Object,
    value: &'a Value,
}

impl<'a> Container<'a> {
    fn name(&self) -> String {
        let name = self.value.get("name").and_then(Value::as_str).unwrap_or("?");
        format!("container {name} of {}", self.owner.describe())
    }

    fn args(&self) -> Vec<String> {
        let Some(Value::Sequence(args)) = self.value.get("args") else {
            panic!("{}: args should be a list of arguments", self.name())
        };
        args.iter()
            .map(|arg| arg.as_str().unwrap_or_else(|| panic!("{}: argument {arg:?} is not a string", self.name())))
            .map(str::to_owned)
            .collect()
    }

    fn option(&self, flag: &str) -> Option<String> {
        option(&self.args(), flag).map(str::to_owned)
    }

    fn env(&self) -> Vec<&'a Value> {
        match self.value.get("env") {
            Some(Value::Sequence(env)) => env.iter().collect(),
            None => Vec::new(),
            other => panic!("{}: env should be a list, found {other:?}", self.name()),
        }
    }

    fn env_entry(&self, name: &str) -> &'a Value {
        self.env()
            .into_iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some(name))
            .unwrap_or_else(|| panic!("{}: no environment variable {name}", self.name()))
    }

    /// The ConfigMaps and Secrets of `envFrom`, as (kind, name).
    fn env_from(&self) -> Vec<(&'static str, String)> {
        let Some(Value::Sequence(sources)) = self.value.get("envFrom") else { return Vec::new() };
        sources
            .iter()
            .map(|source| {
                for (key, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                    if let Some(name) = source.get(key).and_then(|reference| reference.get("name")) {
                        return (kind, name.as_str().unwrap().to_owned());
                    }
                }
                panic!("{}: unknown envFrom source {source:?}", self.name())
            })
            .collect()
    }

    /// The names of every variable the container has: its `env` and the
    /// keys of its `envFrom` sources, which must be in the manifests.
    fn variables(&self, objects: &[Object]) -> BTreeSet<String> {
        let mut names: BTreeSet<String> =
            self.env().iter().map(|entry| entry.get("name").and_then(Value::as_str).unwrap().to_owned()).collect();
        for (kind, name) in self.env_from() {
            let source = find(objects, kind, &name);
            let data = source.at(&["data"]).or_else(|| source.at(&["stringData"]));
            let Some(Value::Mapping(data)) = data else { panic!("{} holds no data", source.describe()) };
            names.extend(data.keys().map(|key| key.as_str().unwrap().to_owned()));
        }
        names
    }

    /// The port number of a container port given by number or by name.
    fn port(&self, port: &Value) -> u64 {
        if let Some(number) = port.as_u64() {
            return number;
        }
        let name = port.as_str().unwrap_or_else(|| panic!("{}: bad port {port:?}", self.name()));
        let Some(Value::Sequence(ports)) = self.value.get("ports") else { panic!("{}: no ports", self.name()) };
        ports
            .iter()
            .find(|declared| declared.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|declared| declared.get("containerPort"))
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("{}: no container port named {name}", self.name()))
    }
}

fn containers(object: &Object) -> Vec<Container<'_>> {
    let mut found = Vec::new();
    for list in ["initContainers", "containers"] {
        if let Some(Value::Sequence(containers)) = object.at(&["spec", "template", "spec", list]) {
            found.extend(containers.iter().map(|value| Container { owner: object, value }));
        }
    }
    found
}

/// Every container that runs otlp-tape, with the object that runs it.
fn otlp_tape_containers(objects: &[Object]) -> Vec<Container<'_>> {
    let found: Vec<Container<'_>> = objects.iter().flat_map(containers).collect();
    assert!(found.len() >= 4, "expected the capture, replay, repair and seal containers, found {found:?}");
    found
}

/// The image `docker-compose.yml` gives the image its `Dockerfile` builds.
fn compose_image() -> String {
    let compose: Value = serde_yaml::from_str(&std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap())
        .expect("docker-compose.yml parses");
    let service = compose.get("services").and_then(|services| services.get("otlp-tape")).unwrap();
    assert!(service.get("build").is_some(), "docker-compose.yml's otlp-tape service builds the Dockerfile");
    service.get("image").and_then(Value::as_str).expect("docker-compose.yml names the built image").to_owned()
}

fn capture_deployment(objects: &[Object]) -> &Object {
    only(objects, "Deployment", |deployment| {
        containers(deployment).iter().any(|container| container.args().first().map(String::as_str) == Some("capture"))
    })
}

fn capture_container(deployment: &Object) -> Container<'_> {
    containers(deployment).into_iter().find(|container| container.args()[0] == "capture").unwrap()
}

fn replay_job(objects: &[Object]) -> &Object {
    only(objects, "Job", |job| containers(job).iter().any(|container| container.args()[0] == "replay"))
}

/// Where variable `name` of `container` comes from, for comparing two
/// containers' session ids: its `valueFrom`, else its value.
fn source_of(container: &Container<'_>, name: &str) -> Value {
    let entry = container.env_entry(name);
    entry.get("valueFrom").or_else(|| entry.get("value")).cloned().unwrap()
}

/// The `$(NAME)` references in `text`.
fn references(text: &str) -> Vec<&str> {
    text.match_indices("$(").filter_map(|(at, _)| text[at + 2..].split_once(')').map(|(name, _)| name)).collect()
}

/// `otlp-tape <path> --help`, remembered.
struct Help {
    dir: tempfile::TempDir,
    pages: BTreeMap<Vec<String>, String>,
}

impl Help {
    fn new() -> Help {
        Help { dir: tempfile::tempdir().unwrap(), pages: BTreeMap::new() }
    }

    fn of(&mut self, path: &[String]) -> &str {
        let dir = self.dir.path().to_path_buf();
        self.pages.entry(path.to_vec()).or_insert_with(|| {
            let output = tape(&dir).args(path).arg("--help").output().unwrap();
            assert!(output.status.success(), "otlp-tape {} --help failed", path.join(" "));
            String::from_utf8(output.stdout).unwrap()
        })
    }

    /// The subcommands a help page lists under `Commands:`.
    fn subcommands(page: &str) -> BTreeSet<String> {
        page.lines()
            .skip_while(|line| line.trim() != "Commands:")
            .skip(1)
            .take_while(|line| !line.trim().is_empty())
            .filter_map(|line| line.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    /// The leading arguments of `args` that are subcommands, each checked
    /// against the help of the one before; the first must be one.
    fn command_path(&mut self, args: &[String]) -> Vec<String> {
        let mut path = Vec::new();
        for arg in args {
            if !Self::subcommands(self.of(&path)).contains(arg) {
                break;
            }
            path.push(arg.clone());
        }
        assert!(!path.is_empty(), "{args:?} names no otlp-tape command");
        path
    }
}

#[test]
fn every_command_uses_subcommands_and_flags_the_binary_has() {
    let objects = manifests();
    let mut help = Help::new();
    let image = compose_image();
    let mut commands = BTreeSet::new();
    for container in otlp_tape_containers(&objects) {
        let name = container.name();
        assert_eq!(container.value.get("image").and_then(Value::as_str), Some(image.as_str()), "{name}: image");
        assert!(container.value.get("command").is_none(), "{name}: the image's entrypoint is otlp-tape; set args");
        let args = container.args();
        let path = help.command_path(&args);
        let page = help.of(&path).to_owned();
        let flags: Vec<&str> =
            args.iter().filter(|arg| arg.starts_with('-')).map(|arg| arg.split('=').next().unwrap_or(arg)).collect();
        for flag in flags {
            assert!(help_mentions(&page, flag), "{name}: otlp-tape {} has no flag {flag}:\n{page}", path.join(" "));
        }
        commands.insert(path.join(" "));
    }
    let expected = ["capture", "replay", "sessions repair", "sessions seal"];
    assert_eq!(commands, expected.iter().map(|command| (*command).to_owned()).collect());
}

#[test]
fn every_variable_is_read_by_otlp_tape_or_expanded_in_the_arguments() {
    let objects = manifests();
    let read_by_otlp_tape = variable_constants();
    for container in otlp_tape_containers(&objects) {
        let name = container.name();
        let variables = container.variables(&objects);
        let args = container.args();
        let referenced: BTreeSet<&str> = args.iter().flat_map(|arg| references(arg)).collect();
        for variable in &variables {
            assert!(
                read_by_otlp_tape.contains(variable) || referenced.contains(variable.as_str()),
                "{name}: otlp-tape reads no variable {variable}, and no argument uses it"
            );
        }
        let indexed = container.owner.str_at(&["spec", "completionMode"]) == Some("Indexed");
        for reference in referenced {
            assert!(
                variables.contains(reference) || (indexed && reference == JOB_COMPLETION_INDEX),
                "{name}: $({reference}) is not a variable of the container, so Kubernetes passes it as it is"
            );
        }
        // Every otlp-tape pod reaches the one store.
        let sources = container.env_from();
        assert!(sources.contains(&("ConfigMap", "otlp-tape-store".to_owned())), "{name}: no store settings");
        assert!(sources.contains(&("Secret", "otlp-tape-s3".to_owned())), "{name}: no S3 credentials");
    }
    let store = find(&objects, "ConfigMap", "otlp-tape-store");
    let location = store.str_at(&["data", "OTLP_TAPE_STORE"]).expect("the store ConfigMap sets OTLP_TAPE_STORE");
    assert!(location.starts_with("s3://"), "OTLP_TAPE_STORE {location}: the writers need a shared S3 store");
}

#[test]
fn capture_writers_join_one_session_with_writer_ids_from_their_pod_names() {
    let objects = manifests();
    let deployment = capture_deployment(&objects);
    let capture = capture_container(deployment);
    let args = capture.args();
    assert!(args.iter().any(|arg| arg == "--join"), "the capture pods should join one session: {args:?}");
    let session = capture.option("--session-id").expect("the writers name the session they join (--session-id)");
    assert_eq!(references(&session), ["SESSION_ID"], "--session-id {session}");

    // The writer id is made from the pod's name (from the downward API), whole, and a suffix new at each
    // start: a fixed id would be refused when the container restarts in the same pod.
    assert_eq!(capture.option("--writer-id"), None, "a fixed --writer-id cannot join again after a restart");
    let field = capture.env_entry("HOSTNAME").get("valueFrom").and_then(|from| from.get("fieldRef"));
    let field = field.and_then(|reference| reference.get("fieldPath")).and_then(Value::as_str);
    assert_eq!(field, Some("metadata.name"), "HOSTNAME should be the pod's name, from the downward API");
    let pod_name = format!("{}{POD_NAME_SUFFIX}", deployment.name());
    let writer = WriterId::for_host(&pod_name, "k3v9qa").unwrap();
    assert_eq!(
        writer.as_str(),
        format!("{pod_name}-k3v9qa"),
        "the pods of Deployment {} get names like {pod_name}, cut short in their writer ids",
        deployment.name()
    );

    assert_eq!(deployment.u64_at(&["spec", "replicas"]), Some(3), "three writers");
    let grace = deployment.u64_at(&["spec", "template", "spec", "terminationGracePeriodSeconds"]).unwrap_or(30);
    assert!(grace >= 60, "{grace} s is short for uploading the open blobs, writing the manifest and sealing");
    let surge = deployment.at(&["spec", "strategy", "rollingUpdate", "maxUnavailable"]).and_then(Value::as_u64);
    assert_eq!(surge, Some(0), "a rollout should start a writer before it stops one, or it may seal the session");

    // Open blobs are spooled on a volume of the pod.
    let spool = capture.option("--spool-dir").expect("the capture names its --spool-dir");
    let mounts = capture.value.get("volumeMounts").and_then(Value::as_sequence).expect("volume mounts");
    let volume = mounts
        .iter()
        .find(|mount| mount.get("mountPath").and_then(Value::as_str) == Some(spool.as_str()))
        .and_then(|mount| mount.get("name"))
        .unwrap_or_else(|| panic!("nothing is mounted at --spool-dir {spool}"));
    let volumes = deployment.at(&["spec", "template", "spec", "volumes"]).and_then(Value::as_sequence).unwrap();
    let volume = volumes.iter().find(|declared| declared.get("name") == Some(volume)).unwrap();
    assert!(volume.get("emptyDir").is_some(), "the spool should be an emptyDir: {volume:?}");

    let resources = capture.value.get("resources").expect("the capture has resources");
    for key in ["requests", "limits"] {
        assert!(resources.get(key).and_then(|values| values.get("memory")).is_some(), "no memory {key}");
    }
}

#[test]
fn service_and_probes_reach_the_capture_receivers() {
    let objects = manifests();
    let deployment = capture_deployment(&objects);
    let capture = capture_container(deployment);
    let mut listening = BTreeMap::new();
    for (flag, port) in [("--grpc", OTLP_GRPC_PORT), ("--http", OTLP_HTTP_PORT)] {
        // The default (127.0.0.1) is out of reach of the Service.
        let listen = capture.option(flag).unwrap_or_else(|| panic!("the capture should set {flag}"));
        let (host, listen_port) = listen.rsplit_once(':').unwrap_or_else(|| panic!("{flag} {listen}"));
        assert!(matches!(host, "0.0.0.0" | "[::]"), "{flag} {listen} is out of reach of the Service");
        assert_eq!(listen_port.parse::<u64>().ok(), Some(port), "{flag} {listen} should be the OTLP port {port}");
        listening.insert(port, flag);
    }

    let service = only(&objects, "Service", |_| true);
    let labels = deployment.at(&["spec", "template", "metadata", "labels"]).and_then(Value::as_mapping).unwrap();
    let selector = service.at(&["spec", "selector"]).and_then(Value::as_mapping).expect("the Service selects pods");
    for (key, value) in selector {
        assert_eq!(labels.get(key), Some(value), "the Service selects {key:?}, which the capture pods lack");
    }
    let ports = service.at(&["spec", "ports"]).and_then(Value::as_sequence).unwrap();
    let mut offered = BTreeSet::new();
    for port in ports {
        let number = port.get("port").and_then(Value::as_u64).unwrap();
        let target = capture.port(port.get("targetPort").unwrap_or(port.get("port").unwrap()));
        assert_eq!(number, target, "Service port {number} should reach the capture on the same port");
        assert!(listening.contains_key(&target), "Service port {number}: the capture does not listen on {target}");
        offered.insert(number);
    }
    assert_eq!(offered, BTreeSet::from([OTLP_GRPC_PORT, OTLP_HTTP_PORT]));

    for probe in ["readinessProbe", "livenessProbe"] {
        let port = capture.value.get(probe).and_then(|p| p.get("tcpSocket")).and_then(|tcp| tcp.get("port"));
        let port = capture.port(port.unwrap_or_else(|| panic!("the capture should have a TCP {probe}")));
        assert!(listening.contains_key(&port), "the {probe} connects to {port}, where the capture does not listen");
    }
}

#[test]
fn replay_job_runs_one_shard_per_index_on_one_timeline() {
    let objects = manifests();
    let job = replay_job(&objects);
    let replay = containers(job).into_iter().find(|container| container.args()[0] == "replay").unwrap();
    assert_eq!(job.str_at(&["spec", "completionMode"]), Some("Indexed"), "the replay Job should be Indexed");
    let completions = job.u64_at(&["spec", "completions"]).expect("completions");
    assert!(completions >= 2, "a sharded replay of {completions} shard");
    assert_eq!(job.u64_at(&["spec", "parallelism"]), Some(completions), "every shard should run at once");
    assert_eq!(replay.option("--shard"), Some(format!("$({JOB_COMPLETION_INDEX})/{completions}")));
    // A shard started again would send its part twice.
    assert_eq!(job.str_at(&["spec", "template", "spec", "restartPolicy"]), Some("Never"));
    assert_eq!(job.u64_at(&["spec", "backoffLimit"]), Some(0));

    let start_at = replay.option("--start-at").expect("the shards share a timeline (--start-at)");
    let [variable] = references(&start_at)[..] else { panic!("--start-at {start_at}: expected one variable") };
    let value = replay.env_entry(variable).get("value").and_then(Value::as_str).unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(value).is_ok(), "{variable} {value} is not an RFC 3339 time");
    let seed = replay.option("--id-seed").expect("the shards share an --id-seed");
    assert!(seed.parse::<u64>().is_ok(), "--id-seed {seed}");

    // It replays the session the writers record.
    let capture = capture_container(capture_deployment(&objects));
    let session = replay.option("--session").expect("the replay names its --session");
    let [variable] = references(&session)[..] else { panic!("--session {session}: expected one variable") };
    assert_eq!(source_of(&replay, variable), source_of(&capture, "SESSION_ID"), "replay and capture sessions");

    let endpoint = replay.option("--endpoint").expect("the replay names its target");
    let port = if replay.option("--protocol").as_deref() == Some("grpc") { OTLP_GRPC_PORT } else { OTLP_HTTP_PORT };
    assert!(endpoint.ends_with(&format!(":{port}")), "--endpoint {endpoint} should use the protocol's port {port}");
}

#[test]
fn seal_job_repairs_a_writer_then_seals_the_capture_session() {
    let objects = manifests();
    let capture = capture_container(capture_deployment(&objects));
    let job = only(&objects, "Job", |job| containers(job).iter().any(|container| container.args()[1] == "seal"));
    let steps: Vec<Container<'_>> = containers(job);
    let [repair, seal] = steps.as_slice() else { panic!("{}: expected repair then seal", job.describe()) };
    assert_eq!(repair.args()[..2], ["sessions", "repair"], "the init container repairs the crashed writer");
    assert_eq!(seal.args()[..2], ["sessions", "seal"]);
    for step in [repair, seal] {
        let args = step.args();
        let [variable] = references(&args[2])[..] else { panic!("{}: session {args:?}", step.name()) };
        assert_eq!(source_of(step, variable), source_of(&capture, "SESSION_ID"), "{}: session", step.name());
    }
    let writer = repair.option("--writer").expect("the repair names the writer (--writer)");
    let [variable] = references(&writer)[..] else { panic!("--writer {writer}: expected one variable") };
    let example = repair.env_entry(variable).get("value").and_then(Value::as_str).unwrap();
    assert!(WriterId::new(example).is_ok(), "{variable} {example} is not a writer id");
}

#[test]
fn kustomization_lists_the_standing_objects_and_all_share_one_namespace() {
    let objects = manifests();
    let kustomization = objects.iter().find(|object| object.kind() == "Kustomization").expect("a kustomization.yaml");
    let resources: Vec<&str> = kustomization
        .at(&["resources"])
        .and_then(Value::as_sequence)
        .unwrap()
        .iter()
        .map(|resource| resource.as_str().unwrap())
        .collect();
    let files: BTreeSet<&str> = objects.iter().map(|object| object.file.as_str()).collect();
    for resource in &resources {
        assert!(files.contains(resource), "kustomization.yaml lists {resource}, which is not in {MANIFESTS}");
    }
    // Jobs start on their own (README); everything else comes with `kubectl apply -k`.
    for object in objects.iter().filter(|object| object.kind() != "Kustomization") {
        let listed = resources.contains(&object.file.as_str());
        assert_eq!(listed, object.kind() != "Job", "{}: in kustomization.yaml is {listed}", object.describe());
    }

    let namespace = only(&objects, "Namespace", |_| true).name().to_owned();
    for object in objects.iter().filter(|object| !matches!(object.kind(), "Namespace" | "Kustomization")) {
        assert_eq!(object.str_at(&["metadata", "namespace"]), Some(namespace.as_str()), "{}", object.describe());
    }

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for command in ["kubectl apply -k deploy/kubernetes", "replay-job.yaml", "seal-job.yaml"] {
        assert!(readme.contains(command), "README.md's \"Running on Kubernetes\" should show {command}");
    }
}
