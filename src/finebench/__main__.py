from finebench.cli import main

raise SystemExit(main())
