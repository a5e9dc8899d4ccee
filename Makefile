# Shortcuts; the scripts do the work (and their own set-up).
.PHONY: run demo test lint bench screenshots build package smoke
run:
	bash scripts/run
demo:
	bash scripts/run --demo
test:
	bash scripts/test
lint:
	.venv/bin/ruff check rf_desktop tests bench scripts && .venv/bin/mypy && .venv/bin/lint-imports
bench:
	.venv/bin/python -m bench
screenshots:
	.venv/bin/python scripts/screenshots.py --dark
	.venv/bin/python scripts/wizard_screenshots.py
build:
	.venv/bin/pip install -q -e '.[build]' && .venv/bin/pyinstaller build.spec --noconfirm
# the Linux release in dist/ (.tar.gz with install.sh, .deb), then tested as installed
package:
	bash scripts/package
smoke:
	bash scripts/smoke_package
