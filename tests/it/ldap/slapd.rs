//! A private OpenLDAP server for the tests: `slapd` from Debian over its own `slapd.d`
//! (loaded with `slapadd -n0`) and a seeded tree (`slapadd -n1`), on a loopback port,
//! optionally with TLS (StartTLS and ldaps://) under a CA the test makes.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use tempfile::TempDir;

pub const BASE: &str = "dc=example,dc=org";
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
pub const ROOT_PW: &str = "root-secret";
pub const READER_DN: &str = "cn=reader,dc=example,dc=org";
pub const READER_PW: &str = "reader-secret";

pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},ou=people,{BASE}")
}

pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},ou=groups,{BASE}")
}

/// The seeded tree: alice and bob in `devs`, bob also in `ops`, dave in `admins`, carol,
/// erin, frank and grace in no group, and `admin` (a directory entry shadowed by the local
/// superuser). The credential cache is the process's, one entry per name and password, so
/// the tests that rely on a remembered login use users no other test signs in as (frank,
/// grace).
pub fn tree() -> String {
    let mut t = format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: person\ncn: reader\nsn: reader\nuserPassword: {READER_PW}\n\n"
    );
    for uid in ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "admin"] {
        t.push_str(&person(uid));
    }
    t.push_str(&group("devs", &["alice", "bob"]));
    t.push_str(&group("ops", &["bob"]));
    t.push_str(&group("admins", &["dave"]));
    t
}

pub fn person(uid: &str) -> String {
    let cap = uid[..1].to_uppercase() + &uid[1..];
    format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cap}\nsn: {cap}\nmail: {uid}@example.org\n\
         displayName: {cap} Example\nuserPassword: {uid}-pw\n\n",
        person_dn(uid)
    )
}

pub fn group(cn: &str, members: &[&str]) -> String {
    let mut g = format!("dn: {}\nobjectClass: groupOfNames\ncn: {cn}\n", group_dn(cn));
    for m in members {
        g.push_str(&format!("member: {}\n", person_dn(m)));
    }
    g + "\n"
}

/// A test CA and a certificate for 127.0.0.1 it signed.
pub struct Pki {
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

pub fn pki() -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(rcgen::DnType::CommonName, "berth ldap test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let key = KeyPair::generate().unwrap();
    let cert_pem = leaf.signed_by(&key, &issuer).unwrap().pem();
    Pki { ca_pem, cert_pem, key_pem: key.serialize_pem() }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A private slapd: its config (`slapd.d`), database and certificates under a temp dir,
/// serving `ldap://127.0.0.1:port` (and `ldaps://127.0.0.1:tls_port` with TLS). Killed by
/// PID when dropped.
pub struct Slapd {
    pub dir: TempDir,
    port: u16,
    pub tls_port: Option<u16>,
    child: Option<Child>,
}

impl Slapd {
    pub fn start(tls: Option<&Pki>) -> Slapd {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("slapd.d")).unwrap();
        std::fs::create_dir_all(p.join("db")).unwrap();
        let mut global =
            format!("dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {}\n", p.join("pid").display());
        if let Some(pki) = tls {
            for (name, pem) in [("ca.pem", &pki.ca_pem), ("cert.pem", &pki.cert_pem), ("key.pem", &pki.key_pem)] {
                std::fs::write(p.join(name), pem).unwrap();
            }
            global.push_str(&format!(
                "olcTLSCACertificateFile: {}\nolcTLSCertificateFile: {}\nolcTLSCertificateKeyFile: {}\n",
                p.join("ca.pem").display(),
                p.join("cert.pem").display(),
                p.join("key.pem").display()
            ));
        }
        let config = format!(
            "{global}\n\
             dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
             olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n\
             dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
             include: file:///etc/ldap/schema/core.ldif\n\n\
             include: file:///etc/ldap/schema/cosine.ldif\n\n\
             include: file:///etc/ldap/schema/inetorgperson.ldif\n\n\
             dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\
             olcAccess: {{0}}to * by * none\n\n\
             dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
             olcDatabase: {{1}}mdb\nolcSuffix: {BASE}\nolcDbDirectory: {db}\n\
             olcRootDN: {ROOT_DN}\nolcRootPW: {ROOT_PW}\n\
             olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none\n\
             olcAccess: {{1}}to * by dn.exact=\"{READER_DN}\" read by self read by * none\n",
            db = p.join("db").display(),
        );
        std::fs::write(p.join("config.ldif"), config).unwrap();
        std::fs::write(p.join("tree.ldif"), tree()).unwrap();
        for (n, file) in [("0", "config.ldif"), ("1", "tree.ldif")] {
            let out = Command::new("slapadd")
                .args(["-n", n, "-F"])
                .arg(p.join("slapd.d"))
                .arg("-l")
                .arg(p.join(file))
                .output()
                .expect("slapadd (apt-get install slapd)");
            assert!(out.status.success(), "slapadd -n{n}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let mut s = Slapd { dir, port: free_port(), tls_port: tls.map(|_| free_port()), child: None };
        s.run();
        s
    }

    fn run(&mut self) {
        let mut urls = format!("ldap://127.0.0.1:{}/", self.port);
        if let Some(tp) = self.tls_port {
            urls.push_str(&format!(" ldaps://127.0.0.1:{tp}/"));
        }
        // `-d 256`: the stats log (one line per operation) on standard error, for `binds`.
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("slapd.log")).unwrap();
        let child = Command::new("slapd")
            .args(["-h", &urls, "-F"])
            .arg(self.dir.path().join("slapd.d"))
            .args(["-d", "256"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "slapd did not listen on {} within 10 s", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops slapd (by its PID); `resume` starts it again on the same port and data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn resume(&mut self) {
        self.run();
    }

    /// Simple binds as `dn` the directory has answered so far.
    pub fn binds(&self, dn: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default();
        let needle = format!("BIND dn=\"{dn}\" method=128");
        log.lines().filter(|l| l.contains(&needle)).count()
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Applies an LDIF change as the directory's root (`ldapmodify`).
    pub fn modify(&self, ldif: &str) {
        use std::io::Write as _;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", ROOT_DN, "-w", ROOT_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (apt-get install ldap-utils)");
        child.stdin.take().unwrap().write_all(ldif.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "ldapmodify: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
