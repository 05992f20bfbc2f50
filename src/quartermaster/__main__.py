from quartermaster.cli import main

raise SystemExit(main())
