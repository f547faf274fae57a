//! `seclog init --self-signed`: a local CA and a server certificate for a first start.

/// Creates a CA and a server certificate signed by it for a first start (`seclog init
/// --self-signed`): `ca.pem`, `ca.key`, `server.pem`, `server.key` in `dir`, keys mode 0600.
/// `names` are the server's DNS names and IP addresses.
pub(crate) fn self_signed(
    dir: &std::path::Path,
    names: &[String],
) -> std::io::Result<seclog_server::TlsFiles> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let fail =
        |error: rcgen::Error| std::io::Error::other(format!("certificate generation: {error}"));
    std::fs::create_dir_all(dir)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "seclog local CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(fail)?;
    let ca = ca_params.self_signed(&ca_key).map_err(fail)?;
    let mut server_params = CertificateParams::new(names.to_vec()).map_err(fail)?;
    server_params.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "localhost".into()),
    );
    server_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate().map_err(fail)?;
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let server = server_params
        .signed_by(&server_key, &issuer)
        .map_err(fail)?;
    let write_private = |name: &str, text: String| -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write_private("ca.key", ca_key.serialize_pem())?;
    write_private("server.key", server_key.serialize_pem())?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), server.pem())?;
    Ok(seclog_server::TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: None,
    })
}
