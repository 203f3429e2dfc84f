from satwatch.cli import main

raise SystemExit(main())
