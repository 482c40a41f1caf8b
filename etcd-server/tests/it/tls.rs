//! TLS with client-certificate authentication: etcdctl, the control plane and the admin
//! commands reach etcd-server with a certificate its CA signed, and nothing gets in without.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use mld_config::common::EtcdTlsConfig;
use mld_config::daemons::ml_detector::MlDetectorConfig;
use mld_control::keys;

use crate::control::{Plane, until};

fn openssl(dir: &Path, args: &[String]) {
    let out =
        Command::new("openssl").current_dir(dir).args(args).output().expect("openssl (make setup)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|&s| s.to_owned()).collect()
}

/// A CA, a server certificate for 127.0.0.1, a client certificate it signed, and a client
/// certificate from another CA; all in `dir`.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    for ca in ["ca", "rogue-ca"] {
        let mut args = strings(&["req", "-x509", "-days", "2", "-subj", &format!("/CN={ca}")]);
        args.extend(strings(&ec));
        args.extend(strings(&["-keyout", &format!("{ca}.key"), "-out", &format!("{ca}.pem")]));
        openssl(dir, &args);
    }
    for (name, ca, ext) in [
        ("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "ca", "extendedKeyUsage=clientAuth\n"),
        ("rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let mut args = strings(&["req", "-subj", &format!("/CN={name}")]);
        args.extend(strings(&ec));
        args.extend(strings(&["-keyout", &format!("{name}.key"), "-out", &format!("{name}.csr")]));
        openssl(dir, &args);
        openssl(
            dir,
            &strings(&[
                "x509",
                "-req",
                "-days",
                "2",
                "-CAcreateserial",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.pem"),
                "-CAkey",
                &format!("{ca}.key"),
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]),
        );
    }
}

fn etcdctl(dir: &Path, endpoint: &str, cert: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new("etcdctl");
    c.env("ETCDCTL_API", "3")
        .current_dir(dir)
        .arg(format!("--endpoints=https://{endpoint}"))
        .arg("--cacert=ca.pem");
    if let Some(name) = cert {
        c.arg(format!("--cert={name}.pem")).arg(format!("--key={name}.key"));
    }
    c.args(["--dial-timeout=2s", "--command-timeout=3s"]).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_are_required_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    certificates(d);
    let port = mld_test_utils::free_port();
    let endpoint = format!("127.0.0.1:{port}");
    let tls = format!(
        r#""tls": {{ "cert_file": "{0}/server.pem", "key_file": "{0}/server.key", "client_ca_file": "{0}/ca.pem" }}"#,
        d.display()
    );
    let _server = crate::server::start_with(d, port, &tls);
    mld_test_utils::wait_until(Duration::from_secs(10), "etcd-server answers over TLS", || {
        etcdctl(d, &endpoint, Some("client"), &["get", "probe"]).status.success()
    });

    // etcdctl with the client certificate works; without one, or with another CA's, it does not.
    let put = etcdctl(d, &endpoint, Some("client"), &["put", "/t/a", "1"]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    let got = etcdctl(d, &endpoint, Some("client"), &["get", "/t/a", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&got.stdout), "1\n");
    assert!(
        !etcdctl(d, &endpoint, None, &["get", "/t/a"]).status.success(),
        "no client certificate"
    );
    assert!(
        !etcdctl(d, &endpoint, Some("rogue"), &["get", "/t/a"]).status.success(),
        "another CA's certificate"
    );
    let plain = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints=http://{endpoint}"))
        .args(["--dial-timeout=2s", "--command-timeout=3s", "get", "/t/a"])
        .output()
        .unwrap();
    assert!(!plain.status.success(), "plain gRPC on a TLS port");

    // The control plane registers over TLS with its client certificate.
    let mut local = MlDetectorConfig::default();
    local.etcd.endpoints = vec![format!("https://{endpoint}")];
    local.etcd.tls = Some(EtcdTlsConfig {
        ca_file: d.join("ca.pem"),
        cert_file: Some(d.join("client.pem")),
        key_file: Some(d.join("client.key")),
    });
    let plane = Plane::with_config(&local, "tls", mld_test_utils::key_ring(1, 1));
    let options = ConnectOptions::new()
        .with_tls(mld_control::tls_options(local.etcd.tls.as_ref().unwrap()).unwrap());
    let mut c = Client::connect([format!("https://{endpoint}")], Some(options)).await.unwrap();
    let reg = keys::component("ml-detector", "tls");
    until("registered over TLS", async || {
        c.get(reg.as_str(), None).await.is_ok_and(|r| !r.kvs().is_empty())
    })
    .await;
    plane.stop().await;

    // The admin commands take the same files.
    let init = Command::new(env!("CARGO_BIN_EXE_etcd-server"))
        .current_dir(d)
        .args([
            "init",
            "--endpoint",
            &format!("https://{endpoint}"),
            "--root-secret",
            "root.secret",
        ])
        .args(["--cacert", "ca.pem", "--cert", "client.pem", "--key", "client.key"])
        .output()
        .unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    assert_eq!(c.get(keys::EPOCH, None).await.unwrap().kvs()[0].value(), b"1");
}
