from rf_desktop.cli import main

raise SystemExit(main())
