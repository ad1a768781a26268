from dcar.entry import main

main()
