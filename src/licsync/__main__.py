from licsync.cli import main

raise SystemExit(main())
