from mailbot.app.cli import main

main()
