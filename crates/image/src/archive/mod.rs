//! Image archives: `docker save` tarballs and OCI image layouts (loaded with auto-detection,
//! saved in a form both understand), and `import` of a root file system tarball.
