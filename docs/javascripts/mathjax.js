// MathJax reads the formulas that pymdownx.arithmatex leaves in the pages (mkdocs.yml): inline
// ones as \( ... \), displayed ones as \[ ... \], each inside an element of class "arithmatex",
// and only those, so a dollar sign elsewhere on a page stays a dollar sign.
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {
    ignoreHtmlClass: ".*",
    processHtmlClass: "arithmatex"
  }
};
